"""Credential-like values taken out of what gets logged.

Shared by the access log (``api/accesslog.py``) and the log formatter (``logs.py``):
neither layer owns it, so it sits beside both rather than inside the API.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

#: Query parameters whose values are credentials: download-link signatures, tokens,
#: presigned-URL signatures. Their values become ``"REDACTED"``.
SECRET_PARAMS = frozenset(
    {
        "sig",
        "signature",
        "token",
        "access_token",
        "key",
        "api_key",
        "apikey",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)


def scrub_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [(name, "REDACTED" if name.lower() in SECRET_PARAMS else value) for name, value in pairs]
    )
