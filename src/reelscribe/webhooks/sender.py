"""``Sender``: one signed POST of a delivery, through the SSRF guard."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import httpx

from reelscribe import __version__
from reelscribe.errors import BlockedURLError, ReelscribeError
from reelscribe.netguard import Allowlist, URLGuard, guarded_transport
from reelscribe.service.webhook_signing import (
    HEADER_DELIVERY,
    HEADER_EVENT,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    signature_header,
)

log = logging.getLogger("reelscribe.webhooks")

#: Longest stored error text per attempt.
_MAX_ERROR = 500


@dataclasses.dataclass(frozen=True, slots=True)
class Sent:
    """How one attempt went."""

    status_code: int | None
    error: str | None
    duration_ms: float
    #: Retrying cannot help (the SSRF guard refused the target).
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Sender:
    """Signs with ``secret`` at ``clock``'s time (Unix seconds) and POSTs;
    ``allowed_networks``: holes in the SSRF guard; ``timeout``: seconds per
    connect/read/write."""

    def __init__(
        self,
        secret: str,
        *,
        allowed_networks: Iterable[str] = (),
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.clock = clock
        self.guard = URLGuard(Allowlist.parse(allowed_networks))
        # The guard's transport is synchronous (netguard checks every connect), so
        # requests run in worker threads. trust_env=False: an environment proxy would
        # make the guard judge the proxy instead of the receiver.
        self._client = httpx.Client(
            transport=guarded_transport(self.guard),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={
                "User-Agent": f"reelscribe-webhooks/{__version__}",
                "Content-Type": "application/json",
            },
        )

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._client.close)

    async def send(self, delivery_id: str, event: str, url: str, payload: dict[str, Any]) -> Sent:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(self.clock())
        headers = {
            HEADER_EVENT: event,
            HEADER_DELIVERY: delivery_id,
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_SIGNATURE: signature_header(self.secret, timestamp, body),
        }
        return await anyio.to_thread.run_sync(self._post, url, body, headers)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Sent:
        started = time.perf_counter()

        def done(code: int | None, error: str | None, permanent: bool = False) -> Sent:
            elapsed = (time.perf_counter() - started) * 1000.0
            return Sent(code, error and error[:_MAX_ERROR], round(elapsed, 3), permanent)

        try:
            # Streamed and closed unread: only the status matters, and a receiver
            # cannot keep us busy with a large or slow body.
            with self._client.stream("POST", url, content=body, headers=headers) as response:
                code = response.status_code
                reason = response.reason_phrase
        except BlockedURLError as exc:
            return done(None, str(exc), permanent=True)
        except ReelscribeError as exc:  # the guard's DNS errors: may heal
            return done(None, str(exc))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return done(None, _describe(exc))
        except Exception as exc:
            # Anything else (a TLS or socket oddity httpx does not wrap) is recorded and
            # retried like a network error rather than lost with the worker thread.
            log.exception("webhook POST to %s failed unexpectedly", url)
            return done(None, _describe(exc))
        if 200 <= code < 300:
            return done(code, None)
        return done(code, f"HTTP {code} {reason}".rstrip())
