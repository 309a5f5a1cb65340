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

from reelscribe.analysis.options import (
    ChapterOptions,
    LlmOptions,
    ModerationOptions,
    SummaryOptions,
)
from reelscribe.analysis.results import Policy
from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError
from reelscribe.formats import FORMATS, RenderOptions
from reelscribe.models import ClipMode, TimeRange
from reelscribe.options import JobOptions
from reelscribe.outputs import ANALYSIS_OUTPUTS, check_outputs
from reelscribe.pipeline.clip import ClipOptions
from reelscribe.pipeline.fetch import FetchOptions
from reelscribe.pipeline.transcribe import TranscribeOptions
from reelscribe.separation.base import SeparateOptions
from reelscribe.separation.spleeter_env import env_root
from reelscribe.sources import MediaSource, as_source
from reelscribe.speakers.base import DiarizeOptions


@dataclass(frozen=True, slots=True)
class PipelineRequest:
    source: MediaSource
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
    #: Summary and keywords of the transcript; None: not asked for.
    summary: SummaryOptions | None = None
    #: Topic chapters of the transcript; None: not asked for.
    chapters: ChapterOptions | None = None
    #: An abstractive summary by an OpenAI-compatible endpoint; None: not asked for.
    llm: LlmOptions | None = None
    #: Content moderation of the video; None: off.
    moderate: ModerationOptions | None = None
    #: Analysis outputs to write: "chapters", "moderation".
    analysis_outputs: tuple[str, ...] = ()
    #: Separate the vocals (ASR hears the stem; ``write_stem``: the ``vocals`` output).
    separate: SeparateOptions | None = None

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise InvalidInputError(
                f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}"
            )
        unknown = [o for o in self.analysis_outputs if o not in ANALYSIS_OUTPUTS]
        if unknown:
            raise InvalidInputError(f"unknown analysis output {unknown[0]!r}")
        if "chapters" in self.analysis_outputs and self.chapters is None:
            raise InvalidInputError("the chapters output needs the chapters stage")
        if not (self.formats or self.clip_output or self.burn_output or self.analysis_outputs
                or self.stem_output):  # fmt: skip
            raise InvalidInputError("nothing to do: ask for at least one format or a clip")

    @property
    def needs_transcript(self) -> bool:
        return (bool(self.formats) or self.burn_output or self.summary is not None
                or self.chapters is not None or self.llm is not None)  # fmt: skip

    @property
    def stem_output(self) -> bool:
        return self.separate is not None and self.separate.write_stem

    @property
    def outputs(self) -> tuple[str, ...]:
        media = ("clip",) * self.clip_output + ("burned_clip",) * self.burn_output
        return (*self.formats, *media, *self.analysis_outputs, *("vocals",) * self.stem_output)


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
    source: MediaSource | str,
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
        source=as_source(source),
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
            route=_route(options, settings),
        ),
        render=options.render_options(settings.speaker_label),
        diarize=_diarize_options(options, settings),
        channels=options.channels,
        speaker_names=dict(options.speaker_names),
        max_duration=settings.max_duration if max_duration is None else max_duration,
        summary=summary_options(options, settings),
        chapters=chapter_options(options, settings, wanted),
        llm=llm_options(options, settings),
        moderate=_moderation_options(options, settings, wanted),
        analysis_outputs=tuple(o for o in wanted if o in ANALYSIS_OUTPUTS),
        separate=separate_options(options, settings, wanted),
    )
    return plan_of(request)


def separate_options(
    options: JobOptions, settings: Settings, outputs: tuple[str, ...]
) -> SeparateOptions | None:
    """What the separate stage is told (None: neither the option nor the ``vocals``
    output, which implies it)."""
    if not (options.separate or "vocals" in outputs):
        return None
    if options.channels == "split":
        raise InvalidInputError("vocal separation works on the mixed audio, not channels split")
    return SeparateOptions(
        backend=settings.separation_backend,
        env_dir=env_root(settings),
        python=settings.separation_python,
        demucs_model=settings.demucs_model,
        demucs_repo=settings.demucs_repo,
        device=settings.device,
        write_stem="vocals" in outputs,
    )


def _route(options: JobOptions, settings: Settings) -> str:
    """The job's engine routing (the server's default unless it names one); a route
    through the hosted engine needs one configured."""
    from reelscribe.asr.routing import check_job_engine

    route = options.engine or settings.asr_engine
    check_job_engine(settings, route)
    return route


def summary_options(options: JobOptions, settings: Settings) -> SummaryOptions | None:
    """What the summarize stage is told (None: not asked for); also ``reelscribe analyze``."""
    if not (options.wants_summary or options.keywords):
        return None
    return SummaryOptions(
        sentences=options.summary_sentences,
        ratio=options.summary_ratio or 0.1,
        keywords=10 if options.keywords else 0,
        summary=options.wants_summary,
        embedding_model=settings.embedding_model,
    )


def chapter_options(
    options: JobOptions, settings: Settings, outputs: tuple[str, ...]
) -> ChapterOptions | None:
    """What the chapters stage is told (None: neither the option nor the output)."""
    if not (options.chapters or "chapters" in outputs):
        return None
    return ChapterOptions(min_seconds=settings.chapter_min_seconds,
                          embedding_model=settings.embedding_model)  # fmt: skip


def llm_options(options: JobOptions, settings: Settings) -> LlmOptions | None:
    """The LLM endpoint comes from the settings only: a job names no URL or key (a URL
    in a job would let any API user point the worker at any host)."""
    if not options.wants_llm:
        return None
    if not settings.llm_url or not settings.llm_model:
        raise InvalidInputError(
            "an LLM summary needs an endpoint: set REELSCRIBE_LLM_URL and REELSCRIBE_LLM_MODEL "
            "(the CLI: --llm-url and --llm-model)"
        )
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return LlmOptions(base_url=settings.llm_url, model=settings.llm_model, api_key=key,
                      action_items=options.action_items, questions=options.questions,
                      timeout=settings.llm_timeout,
                      max_retries=settings.llm_max_retries)  # fmt: skip


_STRICTNESS: dict[Policy, int] = {"off": 0, "flag": 1, "block": 2}


def moderation_policy(job: Policy | None, deployment: Policy) -> Policy:
    """The stricter of the job's and the deployment's policy: a job may ask for more
    moderation than the server's default, never for less."""
    if job is None:
        return deployment
    return job if _STRICTNESS[job] >= _STRICTNESS[deployment] else deployment


def _moderation_options(
    options: JobOptions, settings: Settings, outputs: tuple[str, ...]
) -> ModerationOptions | None:
    policy = moderation_policy(options.moderate, settings.moderation_policy)
    if policy == "off" and "moderation" in outputs:
        policy = "flag"  # asking for the report asks for the check
    if policy == "off":
        return None
    return ModerationOptions(
        policy=policy,
        interval=settings.moderation_interval,
        threshold=settings.moderation_threshold,
        unsafe_labels=tuple(settings.moderation_unsafe_labels),
    )


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
