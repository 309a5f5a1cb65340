"""Skipping for a missing service, honestly.

A developer without PostgreSQL, Redis, SeaweedFS or Chromium may run the rest of the
suite: those tests skip with the reason. CI must not: ``.ci/run`` sets
``REELSCRIBE_REQUIRE_SERVICES=1`` and then a missing service fails the test instead.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_SERVICES = os.environ.get("REELSCRIBE_REQUIRE_SERVICES", "") not in ("", "0")


def missing_service(reason: str) -> NoReturn:
    """Skips the calling test, or fails it where services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REELSCRIBE_REQUIRE_SERVICES is set: CI needs it)", pytrace=False)
    pytest.skip(reason)
