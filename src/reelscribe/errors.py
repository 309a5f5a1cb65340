"""The one exception tree of reelscribe.

Every error carries, as class attributes, a machine-readable ``code``, the HTTP
``status`` the API answers it with, whether it is the user's fault (``user_fault``)
and whether trying again later may help (``retryable``), so the edges (CLI, HTTP API,
worker) decide what to do without knowing the details. ``api/errors.py`` reads
``status``; nothing else maps codes to statuses::

    ReelscribeError                        500 "internal"
    ├── UserError                          400 "invalid_input"  never retry
    │   ├── InvalidInputError              400 "invalid_input"  bad option, bad time range
    │   │   ├── UnsafeConfigError          400 "unsafe_config"  unsafe settings
    │   │   ├── InvalidParameterError      400 "invalid_value"  an OpenAI request field
    │   │   ├── OutputMismatchError        400 "output_mismatch"  hash differs
    │   │   ├── UploadChecksumError        400 "upload_checksum_mismatch"
    │   │   ├── UploadNotPresignedError    400 "upload_not_presigned"
    │   │   └── RangeNotSatisfiableError   416 "range_not_satisfiable"
    │   ├── SourceError                    400 "source_error"   the source cannot be used
    │   │   ├── UnsupportedSourceError     400 "unsupported_source"  scheme or kind we do not handle
    │   │   ├── BlockedURLError            400 "blocked_url"    SSRF guard refused the target
    │   │   ├── SourceNotFoundError        400 "source_not_found"  404, missing file, removed video
    │   │   │   └── HostNotFoundError      400 "host_not_found" no DNS name
    │   │   ├── SourceTooLargeError        400 "source_too_large"  over a limit
    │   │   ├── AuthRequiredError          400 "auth_required"  needs cookies
    │   │   ├── SourceTooSlowError         400 "source_too_slow"  past the download deadline
    │   │   ├── TooManyRedirectsError      400 "too_many_redirects"
    │   │   └── DurationUnknownError       400 "duration_unknown"  an estimate would need a download
    │   ├── MediaError                     400 "media_error"    corrupt media, no usable stream
    │   ├── ModelUnavailableError          400 "model_unavailable"  the Whisper model cannot be had
    │   ├── ModelNotAllowedError           422 "model_not_allowed"  a model outside the allowlist
    │   ├── ExtraNotInstalledError         400 "extra_not_installed"  pip install 'reelscribe[...]'
    │   ├── UnauthorizedError              401 "unauthorized"   no key, or an unknown or revoked one
    │   ├── ContentBlockedError            403 "content_blocked"  moderation found unsafe frames
    │   ├── ForbiddenError                 403 "forbidden"      the key lacks the scope
    │   │   ├── LeaseInvalidError          403 "lease_invalid"  a lease the API did not sign
    │   │   └── SignedLinkError            403 "link_invalid"   a forged download link
    │   │       ├── LinkExpiredError       403 "link_expired"
    │   │       └── LinkBlockedError       403 "content_blocked"  a link to a blocked job's output
    │   ├── NotFoundError                  404 "not_found"      (or not yours)
    │   │   ├── JobNotFoundError           404 "job_not_found"
    │   │   ├── UploadNotFoundError        404 "upload_not_found"
    │   │   ├── BlobNotFoundError          404 "blob_not_found"
    │   │   ├── KeyNotFoundError           404 "key_not_found"
    │   │   └── ModelNotFoundError         404 "model_not_found"
    │   ├── ConflictError                  409 "conflict"       the resource's state forbids it
    │   │   ├── JobStateError              409 "job_state_conflict"
    │   │   │   └── JobNotDoneError        409 "job_not_done"
    │   │   ├── IdempotencyConflictError   409 "idempotency_conflict"
    │   │   ├── UploadOffsetError          409 "upload_offset_mismatch"  (``offset``)
    │   │   ├── UploadStateError           409 "upload_complete"
    │   │   ├── UploadInUseError           409 "upload_in_use"
    │   │   └── UploadPartsMissingError    409 "upload_parts_missing"  (``missing``)
    │   ├── GoneError                      410 "gone"           expired results, abandoned parts
    │   ├── UploadTooLargeError            413 "upload_too_large"
    │   └── RateLimitedError               429 "rate_limited"   (``retry_after``)
    │       ├── QuotaExceededError         429 "quota_exceeded"
    │       └── QueueFullError             429 "queue_full"
    ├── TransientError                     503 "transient"      retry with backoff
    │   └── NetworkError                   503 "network_error"  timeouts, connection resets, 5xx
    ├── ProcessingError                    500 "processing_error"  a tool failed
    │   └── HostedUploadRefusedError       500 "hosted_upload_refused"  a hosted ASR 413
    ├── QueueError                         500 "queue_error"
    │   └── LeaseLost                      409 "lease_lost"     another worker holds the job now
    ├── StorageError                       500 "storage_error"
    ├── JobAborted                         500 "aborted"        the job was cancelled mid-run
    ├── TranscriptionTimeoutError          504 "transcription_timeout"  a synchronous wait ran out
    └── the errors that carry another party's code (status from that code's class, or given):
        ├── TranscriptionFailedError       the failed job's code
        ├── RemoteFailure                  the code a remote worker reports
        └── ApiError, RemoteApiError       the code and status an API answered (clients)

Third-party exceptions are translated at the boundary (``raise ... from exc``) so
callers only ever catch :class:`ReelscribeError`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type-only: errors.py imports only the standard library
    from pathlib import Path

    from reelscribe.analysis.results import ModerationReport


class ReelscribeError(Exception):
    """Root of every error reelscribe raises on purpose."""

    code: str = "internal"
    #: The HTTP status the API answers with (``api/errors.py`` reads it).
    status: int = 500
    #: The caller's input is at fault; retrying cannot help.
    user_fault: bool = False
    #: Trying again later may succeed.
    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        # ``code`` refines the class's code for a case that needs no class of its own
        # (``range_too_long`` is an InvalidInputError); the status stays the class's.
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


def error_class(code: str) -> type[ReelscribeError] | None:
    """The class in the tree that owns ``code`` (None for a code no class owns): how an
    error that carries another party's code (a failed job's) finds its fault and status."""
    pending: list[type[ReelscribeError]] = [ReelscribeError]
    while pending:
        cls = pending.pop()
        if cls.__dict__.get("code") == code:
            return cls
        pending.extend(cls.__subclasses__())
    return None


class _ForeignCode(ReelscribeError):
    """An error that carries a code from elsewhere (a failed job, a remote worker): its
    status is that of the class owning the code when that is a 4xx, else 500."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)
        owner = error_class(code)
        self.status = owner.status if owner is not None and owner.status < 500 else 500


# -- the user's fault: fail at once, never retry, 4xx -------------------------------


class UserError(ReelscribeError):
    code = "invalid_input"
    status = 400
    user_fault = True


class InvalidInputError(UserError):
    code = "invalid_input"


class UnsafeConfigError(InvalidInputError):
    """A combination of settings that would lose data or expose the service."""

    code = "unsafe_config"


class InvalidParameterError(InvalidInputError):
    """A request field OpenAI's API would refuse; ``param`` names it (OpenAI's name)."""

    code = "invalid_value"

    def __init__(self, message: str, *, param: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.param = param


class OutputMismatchError(InvalidInputError):
    """The bytes sent for an output do not hash to the SHA-256 offered (HTTP 400)."""

    code = "output_mismatch"


class UploadChecksumError(InvalidInputError):
    """The stored bytes are not the declared size and SHA-256 (HTTP 400): the object
    and the upload are gone, the client starts again."""

    code = "upload_checksum_mismatch"


class UploadNotPresignedError(InvalidInputError):
    """A presigned-upload call on a resumable upload (send its chunks with PATCH)."""

    code = "upload_not_presigned"


class RangeNotSatisfiableError(InvalidInputError):
    code = "range_not_satisfiable"
    status = 416

    def __init__(self, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        #: The blob's size when known, for a ``Content-Range: bytes */size`` header.
        self.size = size


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


class DurationUnknownError(SourceError):
    """The duration cannot be learnt without downloading the media (an estimate)."""

    code = "duration_unknown"


class MediaError(UserError):
    code = "media_error"


class ModelUnavailableError(UserError):
    code = "model_unavailable"


class ModelNotAllowedError(UserError):
    """A job named a model outside the server's allowlist (or a path): HTTP 422."""

    code = "model_not_allowed"
    status = 422


class ContentBlockedError(UserError):
    """The moderation policy is ``block`` and unsafe frames were found. ``report`` is the
    :class:`~reelscribe.analysis.ModerationReport`; ``path`` the report written as JSON.
    The run stops: the unsafe outputs are not published."""

    code = "content_blocked"
    status = 403

    def __init__(self, report: ModerationReport, path: Path | None = None) -> None:
        times = ", ".join(f"{f.time:.1f}s" for f in report.flags if f.unsafe)
        super().__init__(f"blocked by content moderation: unsafe frames at {times}")
        self.report = report
        self.path = path


class ExtraNotInstalledError(UserError):
    """A feature needs an optional extra (``pip install 'reelscribe[speakers]'``) that
    this installation lacks; the message names the command that installs it."""

    code = "extra_not_installed"


class UnauthorizedError(UserError):
    """No key, or a key that is unknown or revoked (HTTP 401)."""

    code = "unauthorized"
    status = 401


class ForbiddenError(UserError):
    """The key lacks the scope the operation needs (HTTP 403)."""

    code = "forbidden"
    status = 403


class LeaseInvalidError(ForbiddenError):
    """A lease the API did not sign, for another job, or from another key (HTTP 403)."""

    code = "lease_invalid"


class SignedLinkError(ForbiddenError):
    """A forged download link (HTTP 403)."""

    code = "link_invalid"


class LinkExpiredError(SignedLinkError):
    code = "link_expired"


class LinkBlockedError(SignedLinkError):
    """A link to an output of a job content moderation blocked: refused however valid."""

    code = "content_blocked"


class NotFoundError(UserError):
    """No such thing, or not the caller's (HTTP 404)."""

    code = "not_found"
    status = 404


class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class UploadNotFoundError(NotFoundError):
    code = "upload_not_found"


class BlobNotFoundError(NotFoundError):
    code = "blob_not_found"


class KeyNotFoundError(NotFoundError):
    code = "key_not_found"


class ModelNotFoundError(NotFoundError):
    """A model name this server does not have (HTTP 404)."""

    code = "model_not_found"


class ConflictError(UserError):
    """The resource's state does not allow the request (HTTP 409)."""

    code = "conflict"
    status = 409


class JobStateError(ConflictError):
    """The job is not in a state that allows the request (HTTP 409)."""

    code = "job_state_conflict"


class JobNotDoneError(JobStateError):
    code = "job_not_done"


class IdempotencyConflictError(ConflictError):
    """An Idempotency-Key reused for a different request."""

    code = "idempotency_conflict"


class UploadOffsetError(ConflictError):
    """A chunk sent at an offset other than the bytes received so far (HTTP 409)."""

    code = "upload_offset_mismatch"

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class UploadStateError(ConflictError):
    """The upload is complete and takes no more chunks (HTTP 409)."""

    code = "upload_complete"


class UploadInUseError(ConflictError):
    """A queued or running job still needs the upload (HTTP 409)."""

    code = "upload_in_use"


class UploadPartsMissingError(ConflictError):
    """Completion while parts are missing or not of their planned size (HTTP 409);
    ``missing`` lists their numbers when known."""

    code = "upload_parts_missing"

    def __init__(self, message: str, *, missing: list[int] | None = None) -> None:
        super().__init__(message)
        self.missing = missing


class GoneError(UserError):
    """The thing existed and is gone for good: expired results, abandoned parts."""

    code = "gone"
    status = 410


class UploadTooLargeError(UserError):
    code = "upload_too_large"
    status = 413


class RateLimitedError(UserError):
    """Too many requests, too much audio, or a full queue (HTTP 429 + Retry-After)."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, math.ceil(retry_after))


class QuotaExceededError(RateLimitedError):
    """The key's daily quota of audio minutes is used up."""

    code = "quota_exceeded"


class QueueFullError(RateLimitedError):
    """``max_queued_jobs`` are waiting."""

    code = "queue_full"


# -- not the user's fault -------------------------------------------------------------


class TransientError(ReelscribeError):
    code = "transient"
    status = 503
    retryable = True


class NetworkError(TransientError):
    code = "network_error"


class ProcessingError(ReelscribeError):
    code = "processing_error"


class HostedUploadRefusedError(ProcessingError):
    """The hosted ASR API refused a piece as too large (413): the engine cuts smaller."""

    code = "hosted_upload_refused"


class QueueError(ReelscribeError):
    code = "queue_error"


class LeaseLost(QueueError):
    """The claim is no longer the job's current lease: another worker took the job over
    after this one's lease expired, or the job ended. Stop working on it; write nothing."""

    code = "lease_lost"
    status = 409


class StorageError(ReelscribeError):
    code = "storage_error"


class JobAborted(ReelscribeError):
    """The job was cancelled (or its worker is stopping) while the pipeline ran."""

    code = "aborted"


class TranscriptionTimeoutError(ReelscribeError):
    """The job did not end within the synchronous wait (HTTP 504); it carries on."""

    code = "transcription_timeout"
    status = 504

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


# -- errors that carry another party's code ------------------------------------------


class TranscriptionFailedError(_ForeignCode):
    """The job ended without a transcript; ``code`` and fault are the job's."""

    def __init__(self, message: str, *, code: str, user_fault: bool, job_id: str) -> None:
        super().__init__(message, code=code)
        self.user_fault = user_fault
        self.job_id = job_id


class RemoteFailure(_ForeignCode):
    """The error a remote worker reports, rebuilt with its code and fault flags."""

    def __init__(self, code: str, message: str, *, retryable: bool, user_fault: bool) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
        self.user_fault = user_fault


class ApiError(ReelscribeError):
    """An error answer of the reelscribe API, as a client sees it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})", code=code)
        self.status = status
        self.user_fault = 400 <= status < 500


class RemoteApiError(ReelscribeError):
    """The API refused a remote worker's call (a 4xx other than lease_lost): a bad key,
    a bad lease..."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})", code=code)
        self.status = status
