"""Schemathesis against the app's own OpenAPI document, over a live server.

Every operation is fuzzed with schema-valid (positive) and schema-invalid (negative)
requests, authenticated through the document's own security scheme as an admin key
(whose rate limit is high enough not to turn the run into 429s), and every response
is checked with schemathesis's default checks: no 5xx, documented status codes,
content types, headers and bodies matching the schema, invalid input rejected, valid
input accepted. No operation is excluded. Bounded to :data:`EXAMPLES` examples per
operation and mode.

Two adjustments, each because the rule cannot be written in JSON Schema:

* ``POST /api/jobs`` and ``POST /api/estimates`` may refuse schema-valid specs with 400
  (SSRF policy, range limits from settings) or 422 (``end`` must come after ``start``);
* ``POST /api/uploads/resumable`` and ``/presigned`` may refuse a size over the
  configured limit (413).

Operations without any input (``/healthz``, ``/readyz``) have nothing to make
invalid, so they run in positive mode only.

Driven through schemathesis's Python API (operations → Hypothesis strategies) rather
than ``schemathesis.pytest.from_fixture``, whose lazy loading fails on pytest 9.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.integration.api.conftest import _bound_socket, serve, settings_for

EXAMPLES = 25
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]
EXTRA_ACCEPTED = {
    "POST /api/jobs": ["400", "422"],
    # The same body as a job, refused the same ways (and 400 duration_unknown).
    "POST /api/estimates": ["400", "422"],
    "POST /api/uploads/resumable": ["413"],
    "POST /api/uploads/presigned": ["413"],
    # A name for a speaker id the job does not have is refused with 400.
    "PATCH /api/jobs/{job_id}/speakers": ["400"],
    # So is a segment index the transcript does not have, or one named twice; a body near
    # the schema's maxima can be over the JSON request limit (413).
    "PATCH /api/jobs/{job_id}/transcript": ["400", "413"],
}


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    sock = _bound_socket()
    with sock:
        # No worker runs here: jobs the fuzzer submits wait, and /readyz would rightly
        # turn unready after worker_stale_seconds (a 503 schemathesis calls a failure).
        # A remote worker's claim is a long poll: kept short, or each example waits.
        config = settings_for(root, sock.getsockname()[1], rate_limit_per_minute=1_000_000,
                              worker_stale_seconds=86400.0,
                              remote_claim_wait_seconds=0.05)  # fmt: skip
        with serve(config, sock) as live:
            with live.client() as admin:
                body = {"name": "fuzz", "scopes": ["admin"], "rate_limit_per_minute": 1_000_000}
                secret = admin.post("/api/keys", json=body).json()["secret"]
            yield live.base_url, live.app.openapi(), secret


def _config(secret: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"HTTPBearer": {"bearer": secret}}},
            "operations": [
                {
                    "include-name": name,
                    "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED + extra}},
                }
                for name, extra in EXTRA_ACCEPTED.items()
            ],
        }
    )


def test_every_operation_matches_the_schema(fuzz_target: tuple[str, Any, str]) -> None:
    base_url, document, secret = fuzz_target
    schema = schemathesis.openapi.from_dict(document, config=_config(secret))
    failures: list[str] = []
    tried: list[str] = []
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        entry = document["paths"][operation.path][operation.method.lower()]
        has_input = any(k in entry for k in ("parameters", "requestBody", "security"))
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if has_input else [])
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(base_url=base_url)

            tried.append(f"{mode.value} {operation.label}")
            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # every operation reports
                failures.append(f"{mode.value} {operation.label}:\n{exc}")
    operations = sum(len(methods) for methods in document["paths"].values())
    assert len({t.split(" ", 1)[1] for t in tried}) == operations  # none left out
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 120
