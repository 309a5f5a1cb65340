"""The job plan: one typed description of a run, built in one place.

:func:`build_plan` turns a source, the wanted outputs and one
:class:`~reelscribe.options.JobOptions` (plus the :class:`~reelscribe.config.Settings`)
into a :class:`PipelineRequest` (what every stage is told) and the stages that will run,
in order, with their progress weights (:mod:`reelscribe.pipeline.stages` registers
them). The CLI's commands, the job spec and the worker all come through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError
from reelscribe.formats import FORMATS, RenderOptions
from reelscribe.models import ClipMode, TimeRange
from reelscribe.options import JobOptions
from reelscribe.outputs import check_outputs
from reelscribe.pipeline.clip import ClipOptions
from reelscribe.pipeline.fetch import FetchOptions
from reelscribe.pipeline.transcribe import TranscribeOptions
from reelscribe.speakers.base import DiarizeOptions


@dataclass(frozen=True, slots=True)
class PipelineRequest:
    source: str
    time_range: TimeRange | None = None
    formats: tuple[str, ...] = ("srt",)
    #: Also write the cut media (stream copy or smart cut, see ``clip_mode``).
    clip_output: bool = False
    #: Also write the cut media with the subtitles burned in (always re-encoded).
    burn_output: bool = False
    clip_mode: ClipMode = ClipMode.FAST
    fetch: FetchOptions = field(default_factory=FetchOptions)
    transcribe: TranscribeOptions = field(default_factory=TranscribeOptions)
    render: RenderOptions = field(default_factory=RenderOptions)
    clip: ClipOptions | None = None  # encoder settings; mode comes from clip_mode
    #: Diarize the (mixed) audio; None: no speakers unless ``channels`` splits them.
    diarize: DiarizeOptions | None = None
    #: ``split``: one transcript per audio channel, each channel one speaker.
    channels: Literal["mix", "split"] = "mix"
    #: Display names by speaker id, applied to the transcript before rendering.
    speaker_names: dict[str, str] = field(default_factory=dict)
    max_duration: float = 4 * 3600.0

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise InvalidInputError(
                f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}"
            )
        if not self.formats and not self.clip_output and not self.burn_output:
            raise InvalidInputError("nothing to do: ask for at least one format or a clip")

    @property
    def needs_transcript(self) -> bool:
        return bool(self.formats) or self.burn_output

    @property
    def outputs(self) -> tuple[str, ...]:
        media = ("clip",) * self.clip_output + ("burned_clip",) * self.burn_output
        return (*self.formats, *media)


@dataclass(frozen=True, slots=True)
class PlannedStage:
    name: str
    #: Rough share of the run's time, for one overall percentage.
    weight: float


@dataclass(frozen=True, slots=True)
class JobPlan:
    request: PipelineRequest
    stages: tuple[PlannedStage, ...]

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.request.outputs

    def then(self, name: str, weight: float) -> JobPlan:
        """The plan with a step the edge runs after the pipeline (the worker's upload)."""
        return replace(self, stages=(*self.stages, PlannedStage(name, weight)))


def plan_of(request: PipelineRequest) -> JobPlan:
    """The stages ``request`` runs, in order (see :data:`~.stages.STAGES`)."""
    from reelscribe.pipeline.stages import STAGES

    return JobPlan(
        request, tuple(PlannedStage(s.name, s.weight) for s in STAGES if s.wanted(request))
    )


def build_plan(
    source: str,
    options: JobOptions,
    settings: Settings,
    *,
    outputs: Sequence[str],
    time_range: TimeRange | None = None,
    fetch: FetchOptions | None = None,
    max_duration: float | None = None,
) -> JobPlan:
    """The plan for one run; ``outputs`` are names from :mod:`reelscribe.outputs`."""
    wanted = check_outputs(outputs)
    request = PipelineRequest(
        source=source,
        time_range=time_range,
        formats=tuple(o for o in wanted if o in FORMATS),
        clip_output="clip" in wanted,
        burn_output="burned_clip" in wanted,
        clip_mode=ClipMode(options.clip_mode),
        fetch=fetch or FetchOptions.from_settings(settings),
        transcribe=TranscribeOptions.from_settings(
            settings,
            options.model,
            language=options.language,
            task=options.task,
            initial_prompt=options.initial_prompt,
            hotwords=options.hotwords,
            temperature=options.temperature,
        ),
        render=options.render_options(settings.speaker_label),
        diarize=_diarize_options(options, settings),
        channels=options.channels,
        speaker_names=dict(options.speaker_names),
        max_duration=settings.max_duration if max_duration is None else max_duration,
    )
    return plan_of(request)


def _diarize_options(options: JobOptions, settings: Settings) -> DiarizeOptions | None:
    if not options.diarize:
        return None
    token = settings.hf_token.get_secret_value() if settings.hf_token is not None else None
    return DiarizeOptions(
        backend=settings.diarize_backend,
        num_speakers=options.num_speakers,
        min_speakers=options.min_speakers,
        max_speakers=options.max_speakers,
        device=settings.device,
        hf_token=token,
        cpu_threads=settings.cpu_threads,
    )
