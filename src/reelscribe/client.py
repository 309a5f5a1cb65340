"""A small client of the reelscribe HTTP API (used by ``reelscribe submit`` and the
service benchmark). Every API error becomes a :class:`ApiError` carrying the
server's machine-readable code."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from reelscribe.errors import ApiError, NetworkError

TERMINAL = ("done", "failed", "cancelled", "expired", "blocked")


class Client:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise NetworkError(
                f"cannot reach the reelscribe API at {self.http.base_url}: {exc}"
            ) from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise ApiError(response.status_code, error["code"], error["message"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(response.status_code, "http_error", response.text[:200]) from None
        return response.json() if response.content else None

    def upload(self, path: Path, *, chunk: int = 1 << 20) -> dict[str, Any]:
        """Streams a file as the request body (never read whole into memory)."""

        def body() -> Iterator[bytes]:
            with path.open("rb") as fh:
                while block := fh.read(chunk):
                    yield block

        headers = {"X-Filename": quote(path.name), "Content-Type": "application/octet-stream",
                   "Content-Length": str(path.stat().st_size)}  # fmt: skip
        result: dict[str, Any] = self._call("POST", "/api/uploads", content=body(), headers=headers)
        return result

    def submit(self, spec: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        job: dict[str, Any] = self._call("POST", "/api/jobs", json=spec, headers=headers)
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("GET", f"/api/jobs/{job_id}")
        return job

    def result(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/api/jobs/{job_id}/result")
        return result

    def wait(
        self,
        job_id: str,
        *,
        poll: float = 0.5,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        while True:
            job = self.job(job_id)
            if on_update is not None:
                on_update(job)
            if job["status"] in TERMINAL:
                return job
            time.sleep(poll)

    def download(self, url: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with self.http.stream("GET", url) as response, tmp.open("wb") as fh:
                if response.status_code >= 400:
                    raise ApiError(
                        response.status_code, "download_failed", f"cannot download {dest.name}"
                    )
                for block in response.iter_bytes():
                    fh.write(block)
        except httpx.HTTPError as exc:
            raise NetworkError(f"download of {dest.name} failed: {exc}") from exc
        tmp.replace(dest)
        return dest
