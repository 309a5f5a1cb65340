"""The one exception tree of reelscribe.

Every error carries a machine-readable ``code`` and says whose fault it is, so the
edges (CLI, HTTP API, worker) can decide what to do without knowing the details::

    ReelscribeError                      code="internal"
    ├── UserError                        the input is at fault: fail at once, never retry (HTTP 4xx)
    │   ├── InvalidInputError            bad option, bad time range            "invalid_input"
    │   ├── SourceError                  the source cannot be used             "source_error"
    │   │   ├── UnsupportedSourceError   scheme or kind we do not handle       "unsupported_source"
    │   │   ├── BlockedURLError          SSRF guard refused the target         "blocked_url"
    │   │   ├── SourceNotFoundError      404, missing file, removed video      "source_not_found"
    │   │   │   └── HostNotFoundError    the URL's host does not resolve       "host_not_found"
    │   │   ├── SourceTooLargeError      over the size or duration limit       "source_too_large"
    │   │   ├── AuthRequiredError        login, bot check or 403: needs cookies "auth_required"
    │   │   ├── SourceTooSlowError       past the download deadline or too slow "source_too_slow"
    │   │   └── TooManyRedirectsError    a redirect loop or chain too long     "too_many_redirects"
    │   ├── MediaError                   corrupt media, no usable stream       "media_error"
    │   ├── ModelUnavailableError        the Whisper model cannot be had       "model_unavailable"
    │   ├── ModelNotAllowedError         a job named a model not allowed here  "model_not_allowed"
    │   ├── ContentBlockedError          moderation found unsafe frames (block) "content_blocked"
    │   └── ExtraNotInstalledError       an optional extra is missing          "extra_not_installed"
    ├── TransientError                   may succeed later: retry with backoff
    │   └── NetworkError                 timeouts, connection resets, 5xx     "network_error"
    └── ProcessingError                  a tool failed on valid input      "processing_error"

Third-party exceptions are translated at the boundary (``raise ... from exc``) so
callers only ever catch :class:`ReelscribeError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type-only: errors.py imports nothing at run time
    from pathlib import Path

    from reelscribe.analysis.results import ModerationReport


class ReelscribeError(Exception):
    """Root of every error reelscribe raises on purpose."""

    code: str = "internal"
    #: The caller's input is at fault; retrying cannot help.
    user_fault: bool = False
    #: Trying again later may succeed.
    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class UserError(ReelscribeError):
    code = "invalid_input"
    user_fault = True


class InvalidInputError(UserError):
    code = "invalid_input"


class SourceError(UserError):
    code = "source_error"


class UnsupportedSourceError(SourceError):
    code = "unsupported_source"


class BlockedURLError(SourceError):
    code = "blocked_url"


class SourceNotFoundError(SourceError):
    code = "source_not_found"


class SourceTooLargeError(SourceError):
    code = "source_too_large"


class AuthRequiredError(SourceError):
    code = "auth_required"


class HostNotFoundError(SourceNotFoundError):
    code = "host_not_found"


class SourceTooSlowError(SourceError):
    """The download passed ``download_deadline_seconds`` or fell below
    ``min_download_bytes_per_second``: a source that trickles would hold a worker."""

    code = "source_too_slow"


class TooManyRedirectsError(SourceError):
    code = "too_many_redirects"


class MediaError(UserError):
    code = "media_error"


class ModelUnavailableError(UserError):
    code = "model_unavailable"


class ModelNotAllowedError(UserError):
    """A job named a model outside the server's allowlist (or a path): HTTP 422."""

    code = "model_not_allowed"


class ContentBlockedError(UserError):
    """The moderation policy is ``block`` and unsafe frames were found. ``report`` is the
    :class:`~reelscribe.analysis.ModerationReport`; ``path`` the report written as JSON.
    The run stops: the unsafe outputs are not published."""

    code = "content_blocked"

    def __init__(self, report: ModerationReport, path: Path | None = None) -> None:
        times = ", ".join(f"{f.time:.1f}s" for f in report.flags if f.unsafe)
        super().__init__(f"blocked by content moderation: unsafe frames at {times}")
        self.report = report
        self.path = path


class ExtraNotInstalledError(UserError):
    """A feature needs an optional extra (``pip install 'reelscribe[speakers]'``) that
    this installation lacks; the message names the command that installs it."""

    code = "extra_not_installed"


class TransientError(ReelscribeError):
    code = "transient"
    retryable = True


class NetworkError(TransientError):
    code = "network_error"


class ProcessingError(ReelscribeError):
    code = "processing_error"
