"""The one exception tree: every error class lives in errors.py and carries its code,
status and fault, which the API answers with (no table of codes elsewhere)."""

from __future__ import annotations

import importlib
import pkgutil

import reelscribe
from reelscribe import errors
from reelscribe.api.errors import status_for
from reelscribe.errors import ReelscribeError


def _tree() -> list[type[ReelscribeError]]:
    # Import every module first, so a class defined anywhere would show up here.
    for info in pkgutil.walk_packages(reelscribe.__path__, "reelscribe."):
        if info.name.endswith(".__main__") or info.name.startswith("reelscribe.migrations"):
            # scripts, not modules: the CLI runs, alembic's env needs its context
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional extra this installation lacks
            continue
    found: list[type[ReelscribeError]] = []
    pending: list[type[ReelscribeError]] = [ReelscribeError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_error_class_is_in_errors_py_and_its_docstring() -> None:
    for cls in _tree():
        assert cls.__module__ == "reelscribe.errors", f"{cls.__qualname__} is in {cls.__module__}"
        if not cls.__name__.startswith("_"):
            assert cls.__name__ in (errors.__doc__ or ""), f"{cls.__name__} is not drawn"


def test_the_user_fault_is_a_4xx_and_the_rest_is_not_a_user_error() -> None:
    for cls in _tree():
        if cls.user_fault:
            assert 400 <= cls.status < 500, cls
        assert cls.status in (400, 401, 403, 404, 409, 410, 413, 416, 422, 429, 500, 503, 504)


def test_the_api_status_is_the_class_attribute() -> None:
    assert status_for(errors.GoneError("gone")) == 410
    assert status_for(errors.QueueFullError("full", retry_after=5)) == 429
    assert status_for(errors.LinkExpiredError("old")) == 403
    assert status_for(errors.NetworkError("reset")) == 503
    # An error that carries a failed job's code answers like that code's class.
    failed = errors.TranscriptionFailedError(
        "blocked", code="content_blocked", user_fault=True, job_id="j"
    )
    assert status_for(failed) == 403
    assert status_for(errors.RemoteFailure("oops", "x", retryable=False, user_fault=False)) == 500
