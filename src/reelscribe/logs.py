"""JSON log lines for the service processes, with secrets scrubbed.

Every record becomes one JSON object. URLs in messages lose their query strings' secret
values (signatures, tokens, keys: the same list the access log uses), and bearer
tokens are masked, so a URL or header that reaches a log message cannot leak.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from reelscribe.redact import scrub_query

_URL = re.compile(r"(https?://[^\s?#'\"]+)\?([^\s#'\"]+)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def scrub(text: str) -> str:
    text = _URL.sub(lambda m: f"{m.group(1)}?{scrub_query(m.group(2))}", text)
    return _BEARER.sub(r"\1REDACTED", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if record.exc_info:
            entry["error"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
