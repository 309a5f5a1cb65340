"""Webhook signatures: how reelscribe signs a webhook request and how a receiver checks it.

Every request carries::

    Reelscribe-Event: job.completed
    Reelscribe-Delivery: 0193c4b6-…            the body's "id"; the same on every retry
    Reelscribe-Timestamp: 1767225600           Unix seconds, sender's clock, new per attempt
    Reelscribe-Signature: v1=5257a869e7…       hex HMAC-SHA256 of f"{timestamp}.{body}"

keyed with the service's signing secret (``REELSCRIBE_SIGNING_KEY``), over the raw body
bytes exactly as received. The timestamp is signed with the body so that a captured
request cannot be replayed later: receivers should refuse a timestamp more than
:data:`TOLERANCE_SECONDS` (5 minutes) from their own clock, and may remember the
``Reelscribe-Delivery`` ids they have processed, since delivery is at least once.

In Python, call :func:`verify_signature`; elsewhere, compute
``hex(hmac_sha256(secret, timestamp + "." + raw_body))`` and compare it in constant time
with each ``v1=`` value of the header (there may be several, comma-separated, e.g. while
a secret is being rotated).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

HEADER_EVENT = "Reelscribe-Event"
HEADER_DELIVERY = "Reelscribe-Delivery"
HEADER_TIMESTAMP = "Reelscribe-Timestamp"
HEADER_SIGNATURE = "Reelscribe-Signature"

#: The signature scheme's name in the header; a new scheme would get a new name, so
#: receivers can accept both while they move over.
SCHEME = "v1"
#: How far a request's timestamp may be from the receiver's clock (seconds).
TOLERANCE_SECONDS = 300

# Plain ASCII digits only: int() would also accept " 12", "+12" and "1_2".
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"``."""
    message = str(int(timestamp)).encode() + b"." + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The ``Reelscribe-Signature`` value: ``v1=<hex>``."""
    return f"{SCHEME}={sign(secret, timestamp, body)}"


def verify_signature(
    secret: str | bytes,
    timestamp: str | int,
    body: bytes | str,
    header: str | None,
    *,
    tolerance: float = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether a request's ``Reelscribe-Signature`` (``header``) is valid for ``body``
    and ``timestamp`` (the ``Reelscribe-Timestamp`` value), and the timestamp is within
    ``tolerance`` seconds of ``now`` (default: this machine's clock).

    Pass the body exactly as received: re-serialised JSON will not match.
    """
    if isinstance(timestamp, str):
        if not _TIMESTAMP.fullmatch(timestamp):
            return False
        timestamp = int(timestamp)
    if not header or abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, timestamp, raw).encode()
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        # Bytes on both sides: compare_digest refuses non-ASCII str, and a header is
        # attacker-controlled text.
        if scheme == SCHEME and hmac.compare_digest(value.encode(), expected):
            return True
    return False
