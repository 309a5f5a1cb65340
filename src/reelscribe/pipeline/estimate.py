"""Time and cost of a run, before it runs and after it ran.

A step's **speed** is seconds of work per second of media (a real-time factor), per
step, and for the ASR step also per model and device. Speeds are learnt from the step
timings of finished jobs (:func:`samples_of` reads them from a job's result; the
median of the recent ones is the speed, so one slow run moves nothing), and until a
step has been measured a built-in default stands in, labelled ``default``.

Whisper reads audio in 30-second windows, so a shorter clip costs a whole window:
the ASR step's work is counted as at least :data:`ASR_WINDOW` seconds of media.

The cost is the compute time at the worker's hourly price (CPU or GPU) plus the audio
minutes at the engine's per-minute price (hosted engines), from
:class:`~reelscribe.config.Settings`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError, SourceTooLargeError
from reelscribe.models import TimeRange

#: The ASR step: its speed depends on the model and the device.
ASR_STEP = "transcribe"
#: Whisper's window: shorter audio costs as much as this many seconds.
ASR_WINDOW = 30.0
#: The engine of today's ASR step (the local faster-whisper); hosted engines are
#: priced per audio minute under their own names (``price_per_audio_minute``).
LOCAL_ENGINE = "local"
HOSTED_ENGINE = "hosted"


def engine_of_route(route: str | None) -> str:
    """The engine a routing policy runs first (``asr/routing.py``), by its price name."""
    return HOSTED_ENGINE if (route or "").startswith("hosted") else LOCAL_ENGINE


def engine_of_result(engine: object) -> str:
    """The price name of the engine a result records (``{"name": ...}``; none: local)."""
    name = engine.get("name") if isinstance(engine, Mapping) else engine
    return HOSTED_ENGINE if name in ("openai-compatible", HOSTED_ENGINE) else LOCAL_ENGINE


#: Seconds of work per second of media on a CPU, before anything is measured: rough
#: figures from this project's benchmarks (``bench/``), erring on the slow side.
DEFAULT_SPEEDS: dict[str, float] = {
    "fetch": 0.02,
    "probe": 0.002,
    "clip": 0.02,
    "moderate": 0.3,
    "audio": 0.01,
    "transcribe": 0.15,
    "diarize": 0.1,
    "summarize": 0.02,
    "chapters": 0.02,
    "llm": 0.05,
    "render": 0.002,
    "burn": 0.5,
    "mark_chapters": 0.002,
    "upload": 0.005,
}
#: A step nobody has listed yet (a stage added later).
DEFAULT_SPEED = 0.05
#: Relative cost of Whisper sizes against ``base`` (the default model).
_MODEL_FACTORS = (("tiny", 0.5), ("base", 1.0), ("small", 3.0), ("medium", 7.0),
                  ("turbo", 5.0), ("distil", 4.0), ("large", 14.0))  # fmt: skip
#: A GPU runs the neural steps about this much faster than the CPU figures above.
_GPU_FACTOR = 0.1
_NEURAL_STEPS = frozenset({"transcribe", "diarize", "moderate", "summarize", "chapters"})

Basis = Literal["measured", "default"]


@dataclass(frozen=True, slots=True)
class StepSample:
    """One finished step of one job."""

    step: str
    seconds: float
    media_seconds: float
    model: str = ""
    device: str = ""


def work_seconds(step: str, media_seconds: float) -> float:
    """The media seconds a step's speed is counted against."""
    return max(media_seconds, ASR_WINDOW) if step == ASR_STEP else media_seconds


def _key(step: str, model: str, device: str) -> tuple[str, str, str]:
    # Only the ASR step's speed depends on the model, and only the neural steps' on the
    # device (a job without a transcript does not say which device it had).
    return (step, model if step == ASR_STEP else "", device if step in _NEURAL_STEPS else "")


@dataclass(frozen=True, slots=True)
class Speed:
    step: str
    #: Seconds of work per second of media.
    rate: float
    basis: Basis
    #: Finished steps the rate is the median of (0: the default).
    samples: int = 0


@dataclass(frozen=True, slots=True)
class SpeedTable:
    """Measured speeds by (step, model, device); defaults for the rest."""

    measured: Mapping[tuple[str, str, str], tuple[float, int]] = field(default_factory=dict)

    @classmethod
    def learn(cls, samples: Iterable[StepSample]) -> SpeedTable:
        rates: dict[tuple[str, str, str], list[float]] = {}
        for s in samples:
            work = work_seconds(s.step, s.media_seconds)
            if work > 0 and s.seconds >= 0:
                rates.setdefault(_key(s.step, s.model, s.device), []).append(s.seconds / work)
        return cls({k: (statistics.median(v), len(v)) for k, v in rates.items()})

    def speed(self, step: str, model: str, device: str) -> Speed:
        found = self.measured.get(_key(step, model, device))
        if found is not None:
            return Speed(step, found[0], "measured", found[1])
        rate = DEFAULT_SPEEDS.get(step, DEFAULT_SPEED)
        if step == ASR_STEP:
            rate *= model_factor(model)
        if device == "cuda" and step in _NEURAL_STEPS:
            rate *= _GPU_FACTOR
        return Speed(step, rate, "default")


def model_factor(model: str) -> float:
    name = model.lower()
    return next((factor for size, factor in _MODEL_FACTORS if size in name), 1.0)


@dataclass(frozen=True, slots=True)
class Prices:
    cpu_per_hour: float = 0.0
    gpu_per_hour: float = 0.0
    per_audio_minute: Mapping[str, float] = field(default_factory=dict)
    currency: str = "USD"

    @classmethod
    def from_settings(cls, settings: Settings) -> Prices:
        return cls(settings.price_cpu_per_hour, settings.price_gpu_per_hour,
                   dict(settings.price_per_audio_minute), settings.price_currency)  # fmt: skip

    def cost(self, seconds: float, media_seconds: float, engine: str, device: str) -> Cost:
        hourly = self.gpu_per_hour if device == "cuda" else self.cpu_per_hour
        compute = seconds / 3600.0 * hourly
        audio = media_seconds / 60.0 * self.per_audio_minute.get(engine, 0.0)
        return Cost(round(compute, 6), round(audio, 6), round(compute + audio, 6), self.currency)


@dataclass(frozen=True, slots=True)
class Cost:
    #: Worker time at the hourly price of its device.
    compute: float
    #: Audio minutes at the engine's per-minute price.
    audio: float
    total: float
    currency: str


@dataclass(frozen=True, slots=True)
class StepEstimate:
    name: str
    seconds: float
    seconds_per_media_second: float
    basis: Basis
    samples: int


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a run will take: the media it covers, each step, the total and the cost."""

    #: The whole source's duration, and the part the run covers (the range).
    source_duration: float
    media_seconds: float
    steps: tuple[StepEstimate, ...]
    seconds: float
    cost: Cost
    model: str
    device: str
    engine: str = LOCAL_ENGINE
    #: How the duration was learnt: "file", "upload", "range", "ytdlp", "storage".
    probe: str = "file"

    @property
    def basis(self) -> Basis:
        measured = all(s.basis == "measured" for s in self.steps)
        return "measured" if measured else "default"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [asdict(s) for s in self.steps]
        data["basis"] = self.basis
        return data


def span_seconds(duration: float, start: float | None, end: float | None) -> float:
    """The seconds of a ``duration``-long source that [start, end) covers."""
    first = start or 0.0
    last = duration if end is None else min(end, duration)
    return max(0.0, last - first)


def estimate_steps(
    steps: Sequence[str],
    *,
    source_duration: float,
    media_seconds: float,
    speeds: SpeedTable,
    prices: Prices,
    model: str,
    device: str,
    engine: str = LOCAL_ENGINE,
    probe: str = "file",
) -> Estimate:
    """The estimate of a run of ``steps`` (a plan's stage names) over ``media_seconds``."""
    estimates = []
    for name in steps:
        speed = speeds.speed(name, model, device)
        seconds = speed.rate * work_seconds(name, media_seconds)
        estimates.append(StepEstimate(name, round(seconds, 3), round(speed.rate, 5),
                                      speed.basis, speed.samples))  # fmt: skip
    total = round(sum(s.seconds for s in estimates), 3)
    return Estimate(
        source_duration=round(source_duration, 3),
        media_seconds=round(media_seconds, 3),
        steps=tuple(estimates),
        seconds=total,
        cost=prices.cost(total, media_seconds, engine, device),
        model=model,
        device=device,
        engine=engine,
        probe=probe,
    )


def estimate_run(
    steps: Sequence[str],
    duration: float,
    time_range: TimeRange | None,
    *,
    max_seconds: float,
    **context: Any,
) -> Estimate:
    """:func:`estimate_steps` for a source of ``duration`` seconds cut to ``time_range``,
    refusing what the run would refuse: a range past the media's end, or more media
    than ``max_seconds``. ``context``: the keywords of :func:`estimate_steps`."""
    start = time_range.start if time_range is not None else 0.0
    end = time_range.end if time_range is not None else None
    if start >= duration:
        raise InvalidInputError(
            f"start {start:g} s is beyond the end of the media ({duration:.1f} s)",
            code="range_beyond_media",
        )
    seconds = span_seconds(duration, start, end)
    if seconds > max_seconds:
        raise SourceTooLargeError(
            f"{seconds:.0f} s of media is over the limit of {max_seconds:.0f} s; "
            "pick a shorter range with start/end"
        )
    return estimate_steps(steps, source_duration=duration, media_seconds=seconds, **context)


# --- what a finished job took -----------------------------------------------------------


def result_media_seconds(result: Mapping[str, Any]) -> float | None:
    """The seconds of media a finished job covered, from its result summary."""
    media = result.get("media")
    if not isinstance(media, Mapping) or not isinstance(media.get("duration"), int | float):
        return None
    raw_start, raw_end = result.get("start"), result.get("end")
    start = float(raw_start) if isinstance(raw_start, int | float) else 0.0
    duration = float(media["duration"])
    if isinstance(raw_end, int | float):
        return max(0.0, float(raw_end) - start)
    # No end: the file was read from the start to its end (a section download's file
    # starts at the section, so its whole duration is the span).
    return duration - start if duration > start else duration


def result_model(result: Mapping[str, Any]) -> tuple[str, str]:
    """The model and device a finished job's transcript was made with ("" when none)."""
    transcript = result.get("transcript")
    model = transcript.get("model") if isinstance(transcript, Mapping) else None
    if not isinstance(model, Mapping):
        return "", ""
    return str(model.get("name") or ""), str(model.get("device") or "")


def samples_of(result: Mapping[str, Any]) -> list[StepSample]:
    """The step timings of one finished job, as speed samples."""
    timings = result.get("timings")
    media_seconds = result_media_seconds(result)
    if not isinstance(timings, Mapping) or not media_seconds:
        return []
    model, device = result_model(result)
    return [StepSample(str(step), float(seconds), media_seconds, model, device)
            for step, seconds in timings.items() if isinstance(seconds, int | float)]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Actual:
    """What a finished run took: its steps' times, their sum and the cost."""

    media_seconds: float
    steps: dict[str, float]
    seconds: float
    cost: Cost
    model: str
    device: str
    engine: str = LOCAL_ENGINE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def actual_of(
    result: Mapping[str, Any] | None, prices: Prices, *, default_device: str = "cpu"
) -> Actual | None:
    """The actual time and cost of a finished job, from its result (None: not finished,
    or a job from before timings were kept)."""
    if not result:
        return None
    timings = result.get("timings")
    media_seconds = result_media_seconds(result)
    if not isinstance(timings, Mapping) or media_seconds is None:
        return None
    steps = {str(k): round(float(v), 3) for k, v in timings.items() if isinstance(v, int | float)}
    seconds = round(sum(steps.values()), 3)
    model, device = result_model(result)
    device = device or default_device
    engine = engine_of_result(result.get("engine"))
    return Actual(round(media_seconds, 3), steps, seconds,
                  prices.cost(seconds, media_seconds, engine, device), model, device,
                  engine)  # fmt: skip
