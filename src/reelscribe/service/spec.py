"""What a job asks for: the validated, stored form of ``POST /api/jobs``.

The API validates requests into :class:`JobSpec`; the job row stores
``JobSpec.model_dump(mode="json")``; the worker turns it back into a
:class:`~reelscribe.pipeline.plan.JobPlan` with :func:`to_plan` (the same
:func:`~reelscribe.pipeline.plan.build_plan` the CLI uses).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from reelscribe.errors import InvalidInputError
from reelscribe.models import TimeRange, parse_timestamp
from reelscribe.options import CueLimits, JobOptions, SubtitleStyle
from reelscribe.outputs import output_names

if TYPE_CHECKING:
    from reelscribe.config import Settings
    from reelscribe.pipeline.plan import JobPlan
    from reelscribe.sources import MediaSource

__all__ = ["CueLimits", "JobOptions", "JobSpec", "OutputName", "Source", "SubtitleStyle"]


def _known_output(name: str) -> str:
    if name not in output_names():
        raise ValueError(f"unknown output {name!r}: choose from {', '.join(output_names())}")
    return name


#: An output name: one of the registered formats or media outputs (reelscribe.outputs).
OutputName = Annotated[
    str,
    AfterValidator(_known_output),
    WithJsonSchema({"type": "string", "enum": list(output_names())}),
]
PriorityName = Literal["fast", "normal", "bulk"]

#: Bounds on ``JobSpec.metadata``: it is stored with the job and returned by every
#: listing, so it must stay small.
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_CHARS = 64
METADATA_MAX_VALUE_CHARS = 1024
METADATA_MAX_BYTES = 8 * 1024  # keys and values together, UTF-8


class Source(BaseModel):
    """Exactly one of ``url`` (http, https or anything yt-dlp supports) or ``upload_id``."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=4096, examples=["https://example.com/talk.mp4"])
    upload_id: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _one_of(self) -> Source:
        if (self.url is None) == (self.upload_id is None):
            raise ValueError("give exactly one of source.url or source.upload_id")
        if self.url is not None and not self.url.lower().startswith(("http://", "https://")):
            raise ValueError("source.url must be an http(s) URL")
        return self


def _default_outputs() -> list[OutputName]:
    return ["srt", "json"]


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Source
    start: float | None = Field(None, description="Seconds, or HH:MM:SS.mmm as a string.")
    end: float | None = Field(None, description="Seconds, or HH:MM:SS.mmm as a string.")
    outputs: list[OutputName] = Field(default_factory=lambda: _default_outputs(), min_length=1)
    options: JobOptions = Field(default_factory=JobOptions)
    priority: PriorityName = "normal"
    webhook_url: HttpUrl | None = None
    metadata: dict[str, str] = Field(
        default_factory=dict,
        max_length=METADATA_MAX_KEYS,
        description=f"Up to {METADATA_MAX_KEYS} string pairs of your own: keys of 1 to "
        f"{METADATA_MAX_KEY_CHARS} characters, values of at most {METADATA_MAX_VALUE_CHARS}, "
        f"{METADATA_MAX_BYTES} bytes (UTF-8) in all.",
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _times(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_timestamp(value)
            except InvalidInputError as exc:  # pydantic reports ValueErrors per field
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, str]) -> dict[str, str]:
        # The messages never repeat the offending key or value: they may be huge.
        total = 0
        for key, item in value.items():
            if not 1 <= len(key) <= METADATA_MAX_KEY_CHARS:
                raise ValueError(
                    f"metadata keys must have 1 to {METADATA_MAX_KEY_CHARS} characters "
                    f"(one has {len(key)})"
                )
            if len(item) > METADATA_MAX_VALUE_CHARS:
                raise ValueError(
                    f"metadata values may have at most {METADATA_MAX_VALUE_CHARS} characters "
                    f"(one has {len(item)})"
                )
            total += len(key.encode("utf-8", "surrogatepass"))
            total += len(item.encode("utf-8", "surrogatepass"))
        if total > METADATA_MAX_BYTES:
            raise ValueError(
                f"metadata may hold at most {METADATA_MAX_BYTES} bytes ({total} given)"
            )
        return value

    @field_validator("outputs")
    @classmethod
    def _unique(cls, value: list[OutputName]) -> list[OutputName]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _range(self) -> JobSpec:
        try:
            self.time_range()
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from exc
        return self

    def time_range(self) -> TimeRange | None:
        return TimeRange.parse(self.start, self.end)


def to_plan(spec: JobSpec, source: MediaSource, settings: Settings) -> JobPlan:
    """The plan a worker runs for a job; ``source`` is its URL or its upload, copied to
    a local file."""
    from reelscribe.asr.catalog import check_job_model
    from reelscribe.pipeline.plan import build_plan

    if spec.options.model is not None:  # also here: a job stored before the allowlist
        check_job_model(settings, spec.options.model)
    return build_plan(
        source,
        spec.options,
        settings,
        outputs=spec.outputs,
        time_range=spec.time_range(),
        max_duration=min(settings.max_duration, settings.max_clip_seconds),
    )
