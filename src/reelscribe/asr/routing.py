"""Routing: which engine transcribes a job, and which one takes over when it fails.

``local`` (faster-whisper here), ``hosted`` (an OpenAI-compatible API), or one then the
other: with ``local-then-hosted`` a local failure (an error, a model that cannot be
loaded, CUDA out of memory) runs the hosted engine, and ``hosted-then-local`` the
reverse (the API down, refusing, or still failing after its retries). The server's
default is ``REELSCRIBE_ASR_ENGINE``; a job may name another (``options.engine``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError, ModelUnavailableError, ReelscribeError

if TYPE_CHECKING:  # the engines (NumPy, PyAV) load when a process makes them, not when
    # the API checks a job's route at submit
    from reelscribe.asr.base import AsrEngine
    from reelscribe.asr.faster_whisper import LoadedModel

Route = Literal["local", "hosted", "local-then-hosted", "hosted-then-local"]
ROUTES: tuple[Route, ...] = get_args(Route)

NO_HOSTED = (
    "the hosted ASR engine is not configured: set REELSCRIBE_HOSTED_ASR_URL "
    "(and REELSCRIBE_HOSTED_ASR_API_KEY), or use engine 'local'"
)


def needs_hosted(route: str) -> bool:
    return route != "local"


def check_job_engine(settings: Settings, route: str) -> None:
    """Refuses (at submit, 422) a route through a hosted engine this server lacks."""
    if needs_hosted(route) and not settings.hosted_asr_url:
        raise InvalidInputError(NO_HOSTED)


@dataclass
class Engines:
    """The engines of one process: made once (a worker, a CLI run) and passed in."""

    local: AsrEngine
    hosted: AsrEngine | None = None

    @classmethod
    def from_settings(cls, settings: Settings, model: LoadedModel | None = None) -> Engines:
        from reelscribe.asr.faster_whisper import FasterWhisperEngine
        from reelscribe.asr.openai_compatible import HostedOptions, OpenAICompatibleEngine

        hosted = HostedOptions.from_settings(settings)
        return cls(
            local=FasterWhisperEngine(model),
            hosted=None if hosted is None else OpenAICompatibleEngine(hosted),
        )

    def order(self, route: str) -> list[AsrEngine]:
        """The engines ``route`` tries, first to last."""
        if route not in ROUTES:
            raise InvalidInputError(f"unknown engine {route!r}; choose from {', '.join(ROUTES)}")
        if route == "local":
            return [self.local]
        if self.hosted is None:
            raise InvalidInputError(NO_HOSTED)
        return {
            "hosted": [self.hosted],
            "local-then-hosted": [self.local, self.hosted],
            "hosted-then-local": [self.hosted, self.local],
        }[route]

    def close(self) -> None:
        close = getattr(self.hosted, "close", None)
        if close is not None:
            close()


def falls_back(exc: BaseException) -> bool:
    """Whether the next engine should try after ``exc``: yes for the engine's own
    failures (errors, timeouts, out of memory, a model that cannot be loaded); no when
    the job was stopped (cancelled, shut down) or its input is at fault (corrupt media,
    a bad option), which no other engine would change."""
    if not isinstance(exc, Exception):
        return False  # KeyboardInterrupt, SystemExit
    if isinstance(exc, ReelscribeError):
        if exc.code == "aborted":  # worker.JobAborted: cancelled, lease lost, shutdown
            return False
        if isinstance(exc, ModelUnavailableError):
            return True
        return not exc.user_fault
    return True
