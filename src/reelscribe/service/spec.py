"""What a job asks for: the validated, stored form of ``POST /api/jobs``.

The API validates requests into :class:`JobSpec`; the job row stores
``JobSpec.model_dump(mode="json")``; the worker turns it back into a
:class:`~reelscribe.pipeline.runner.PipelineRequest` with :func:`to_request`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from reelscribe.errors import InvalidInputError
from reelscribe.models import TimeRange, parse_timestamp

OutputName = Literal["srt", "vtt", "txt", "json", "md", "ass", "clip", "burned_clip"]
TEXT_OUTPUTS: tuple[str, ...] = ("srt", "vtt", "txt", "json", "md", "ass")
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


class SubtitleStyle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    font_size: float = Field(44.0, gt=4, le=400)
    position: Literal["bottom", "top", "middle"] = "bottom"
    primary_colour: str = Field("#FFFFFF", pattern=r"^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$")
    outline_colour: str = Field("#000000", pattern=r"^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$")
    outline: float = Field(2.5, ge=0, le=20)


class CueLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_chars_per_line: int = Field(42, ge=10, le=200)
    max_lines: int = Field(2, ge=1, le=4)
    max_cps: float = Field(17.0, gt=1, le=100)


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, max_length=200, description="Default: the server's model.")
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    task: Literal["transcribe", "translate"] = "transcribe"
    clip_mode: Literal["fast", "exact"] = "fast"
    hotwords: str | None = Field(None, max_length=1000)
    initial_prompt: str | None = Field(None, max_length=2000)
    words_in_markdown: bool = False
    subtitle_style: SubtitleStyle = Field(default_factory=SubtitleStyle)
    cue_limits: CueLimits = Field(default_factory=CueLimits)


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


def to_request(spec: JobSpec, source: str, defaults: Any) -> Any:
    """The pipeline request for a job; ``source`` is the URL or the local path of the
    upload, ``defaults`` the worker's :class:`~reelscribe.config.Settings`."""
    from reelscribe.formats import AssStyle, CueOptions, RenderOptions
    from reelscribe.models import ClipMode
    from reelscribe.pipeline.fetch import FetchOptions
    from reelscribe.pipeline.runner import PipelineRequest
    from reelscribe.pipeline.transcribe import TranscribeOptions

    opts = spec.options
    style = opts.subtitle_style
    cue = CueOptions(
        max_chars_per_line=opts.cue_limits.max_chars_per_line,
        max_lines=opts.cue_limits.max_lines,
        max_cps=opts.cue_limits.max_cps,
    )
    return PipelineRequest(
        source=source,
        time_range=spec.time_range(),
        formats=tuple(o for o in spec.outputs if o in TEXT_OUTPUTS),
        clip_output="clip" in spec.outputs,
        burn_output="burned_clip" in spec.outputs,
        clip_mode=ClipMode(opts.clip_mode),
        fetch=FetchOptions.from_settings(defaults),
        transcribe=TranscribeOptions.from_settings(
            defaults,
            opts.model,
            language=opts.language,
            task=opts.task,
            initial_prompt=opts.initial_prompt,
            hotwords=opts.hotwords,
        ),
        render=RenderOptions(
            cue=cue,
            ass_style=AssStyle(
                font_size=style.font_size,
                position=style.position,
                primary_colour=style.primary_colour,
                outline_colour=style.outline_colour,
                outline=style.outline,
            ),
            words_in_markdown=opts.words_in_markdown,
        ),
        max_duration=min(defaults.max_duration, defaults.max_clip_seconds),
    )
