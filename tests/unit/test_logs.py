from __future__ import annotations

import json
import logging

from reelscribe.logs import JsonFormatter, scrub


def test_scrub_urls_and_bearer_tokens() -> None:
    text = ("fetching https://cdn.example.com/a.mp4?X-Amz-Signature=abc123&part=2 "
            "with Authorization: Bearer sk_live_999")  # fmt: skip
    out = scrub(text)
    assert "abc123" not in out
    assert "sk_live_999" not in out
    assert "part=2" in out
    assert "https://cdn.example.com/a.mp4?" in out


def test_json_lines() -> None:
    record = logging.LogRecord("reelscribe.worker", logging.INFO, __file__, 1,
                               "job %s via http://h/x?sig=s3cr3t", ("j1",), None)  # fmt: skip
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "info"
    assert entry["logger"] == "reelscribe.worker"
    assert entry["message"] == "job j1 via http://h/x?sig=REDACTED"
