"""What a run may be asked to do: the one options object.

:class:`JobOptions` is the body of ``options`` in ``POST /api/jobs`` *and* what the CLI's
flags fill in, so the two cannot drift apart (a test checks every field has a flag).
:func:`reelscribe.pipeline.plan.build_plan` turns it, with the
:class:`~reelscribe.config.Settings`, into the plan a worker or the CLI runs. A new
stage adds its options here, once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from reelscribe.errors import InvalidInputError
from reelscribe.formats import AssStyle, CueOptions, RenderOptions

SPEAKER_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
#: One line of 1-100 characters, not only spaces.
SPEAKER_NAME = r"^[^\r\n\t]*[^\s][^\r\n\t]*$"
SpeakerId = Annotated[str, StringConstraints(pattern=SPEAKER_ID)]
SpeakerName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=SPEAKER_NAME)]
SpeakerNames = dict[SpeakerId, SpeakerName]


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


def speaker_names(value: dict[str, str]) -> dict[str, str]:
    """Checks a name map (ids as the pipeline makes them, names on one line)."""
    import re

    for key, name in value.items():
        if not re.match(SPEAKER_ID, key):
            raise ValueError(f"invalid speaker id {key!r}")
        if not name.strip() or len(name) > 100 or any(c in name for c in "\r\n\t"):
            raise ValueError(f"invalid name for {key}: 1-100 characters on one line")
    return {k: " ".join(v.split()) for k, v in value.items()}


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, max_length=200, description="Default: the server's model.")
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    task: Literal["transcribe", "translate"] = "transcribe"
    clip_mode: Literal["fast", "exact"] = "fast"
    hotwords: str | None = Field(None, max_length=1000)
    initial_prompt: str | None = Field(None, max_length=2000)
    temperature: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Decoding temperature to start from; Whisper falls back to higher ones "
        "(in steps of 0.2) where a segment decodes badly. 0: the most likely text.",
    )
    engine: Literal["local", "hosted", "local-then-hosted", "hosted-then-local"] | None = Field(
        None,
        description="ASR engine: local (faster-whisper), hosted (the server's "
        "OpenAI-compatible API), or one then the other if the first fails. "
        "Default: the server's (REELSCRIBE_ASR_ENGINE).",
    )
    words_in_markdown: bool = False
    subtitle_style: SubtitleStyle = Field(default_factory=SubtitleStyle)
    cue_limits: CueLimits = Field(default_factory=CueLimits)
    # --- speakers ---------------------------------------------------------------
    speakers: bool = Field(False, description="Label who speaks when (diarization).")
    num_speakers: int | None = Field(None, ge=1, le=32, description="Exact speaker count.")
    min_speakers: int | None = Field(None, ge=1, le=32, description="At least this many.")
    max_speakers: int | None = Field(None, ge=1, le=32, description="At most this many.")
    channels: Literal["mix", "split"] = Field(
        "mix",
        description="mix: one mono transcript; split: each audio channel is transcribed on "
        "its own as one speaker (phone calls, two-mic interviews).",
    )
    speaker_names: SpeakerNames = Field(
        default_factory=dict,
        max_length=64,
        description='Display names by speaker id, e.g. {"SPEAKER_00": "Diane"}.',
    )
    speaker_label: Literal["bracket", "dash"] | None = Field(
        None, description="How SRT/ASS mark a change of speaker; default: the server's."
    )
    # --- vocal separation ---------------------------------------------------------
    separate: bool = Field(
        False,
        description="Transcribe the vocal stem instead of the mix (songs, loud music); "
        "the 'vocals' output also writes the stem.",
    )
    # --- analysis -----------------------------------------------------------------
    summary: bool = Field(
        False, description="An extractive summary: the transcript's most central sentences."
    )
    summary_sentences: int | None = Field(
        None, ge=1, le=100, description="Summary length in sentences (implies summary)."
    )
    summary_ratio: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Summary length as a share of the sentences (implies summary); default 0.1.",
    )
    keywords: bool = Field(False, description="Keywords and keyphrases (YAKE + embeddings).")
    chapters: bool = Field(
        False, description="Topic chapters with titles and summaries (recordings of 20 s+)."
    )
    llm: bool = Field(
        False,
        description="Also an abstractive summary by the server's LLM endpoint "
        "(REELSCRIBE_LLM_URL), checked against the transcript.",
    )
    action_items: bool = Field(False, description="LLM: list action items (implies llm).")
    questions: bool = Field(False, description="LLM: list open questions (implies llm).")
    moderate: Literal["off", "flag", "block"] | None = Field(
        None,
        description="Content moderation of the video: off, flag (report) or block "
        "(the job ends 'blocked'). A job may be stricter than the server "
        "(REELSCRIBE_MODERATION_POLICY), never laxer.",
    )

    @field_validator("speaker_names")
    @classmethod
    def _speaker_names(cls, value: dict[str, str]) -> dict[str, str]:
        return speaker_names(value)

    @model_validator(mode="after")
    def _counts(self) -> JobOptions:
        low, high = self.min_speakers, self.max_speakers
        if low is not None and high is not None and low > high:
            raise ValueError("min_speakers must be <= max_speakers")
        if self.num_speakers is not None and (
            (low is not None and self.num_speakers < low)
            or (high is not None and self.num_speakers > high)
        ):
            raise ValueError("num_speakers must lie within min_speakers..max_speakers")
        if self.separate and self.channels == "split":
            raise ValueError("separate works on the mixed audio; it cannot go with channels split")
        if self.summary_sentences is not None and self.summary_ratio is not None:
            raise ValueError("give summary_sentences or summary_ratio, not both")
        return self

    @property
    def wants_summary(self) -> bool:
        return self.summary or self.summary_sentences is not None or self.summary_ratio is not None

    @property
    def wants_llm(self) -> bool:
        return self.llm or self.action_items or self.questions

    @property
    def diarize(self) -> bool:
        """Diarization runs when asked for, or implied by a speaker count; a split by
        channel already knows its speakers."""
        counted = (self.num_speakers, self.min_speakers, self.max_speakers) != (None,) * 3
        return (self.speakers or counted) and self.channels == "mix"

    def render_options(
        self, default_label: Literal["bracket", "dash"], video_size: tuple[int, int] | None = None
    ) -> RenderOptions:
        """How the text outputs are written (also when they are re-rendered later)."""
        style, limits = self.subtitle_style, self.cue_limits
        return RenderOptions(
            cue=CueOptions(
                max_chars_per_line=limits.max_chars_per_line,
                max_lines=limits.max_lines,
                max_cps=limits.max_cps,
            ),
            ass_style=AssStyle(
                font_size=style.font_size,
                position=style.position,
                primary_colour=style.primary_colour,
                outline_colour=style.outline_colour,
                outline=style.outline,
            ),
            words_in_markdown=self.words_in_markdown,
            speaker_label=self.speaker_label or default_label,
            video_size=video_size,
        )

    @classmethod
    def build(cls, **values: object) -> JobOptions:
        """Validates like the API does but raises :class:`InvalidInputError` with one
        readable line (for the CLI)."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "options"
            raise InvalidInputError(f"invalid {where}: {first['msg']}") from exc


def parse_speaker_names(text: str) -> dict[str, str]:
    """``"SPEAKER_00=Diane, SPEAKER_01=Sheila"`` -> a name map (the CLI's form)."""
    names: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, name = part.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise InvalidInputError(f"invalid speaker name {part.strip()!r}: use ID=Name")
        names[key.strip()] = name.strip()
    try:
        return speaker_names(names)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc
