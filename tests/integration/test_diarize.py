"""Offline diarization with the real models on real speech, scored like the benchmark.

References: the two-speaker file is built from ``stereo_diarization.wav`` (left channel,
a pause, the right channel), so who speaks when follows from the channel boundaries;
the AMI excerpts come with their RTTM and UEM. DER is pyannote.metrics'.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from reelscribe.asr.faster_whisper import EngineOptions
from reelscribe.errors import ExtraNotInstalledError, InvalidInputError
from reelscribe.pipeline.diarize import STAGE, diarize
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from reelscribe.progress import Progress
from reelscribe.speakers import Diarization, DiarizeOptions, assign_speakers, load_diarizer
from tests.conftest import decode_channel

SR = 16_000
PAUSE = 1.0

Samples = npt.NDArray[np.float32]


def speech_bounds(samples: Samples, offset: float = 0.0) -> tuple[float, float]:
    """First and last 10 ms frame within 35 dB of the loudest: the talker's span."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    energy = (frames**2).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (-35 / 10))
    return offset + loud[0] * 0.01, offset + (loud[-1] + 1) * 0.01


def annotation(turns: list[tuple[float, float, str]]) -> Annotation:
    ann = Annotation()
    for i, (start, end, who) in enumerate(turns):
        ann[Segment(start, end), i] = who
    return ann


def hypothesis(result: Diarization) -> Annotation:
    return annotation([(t.start, t.end, t.speaker) for t in result.turns])


def der(reference: Annotation, result: Diarization, uem: Timeline, collar: float = 0.0) -> float:
    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    return float(metric(reference, hypothesis(result), uem=uem))


@pytest.fixture(scope="module")
def options() -> DiarizeOptions:
    return DiarizeOptions()


@pytest.fixture(scope="module")
def two_speakers(shared_media: Path) -> tuple[Samples, Annotation]:
    """Left channel, 1 s of silence, right channel, as one mono track; its reference."""
    left = decode_channel(shared_media / "stereo_diarization.wav", 0)
    right = decode_channel(shared_media / "stereo_diarization.wav", 1)
    samples = np.concatenate([left, np.zeros(round(PAUSE * SR), np.float32), right])
    right_offset = len(left) / SR + PAUSE
    reference = annotation(
        [(*speech_bounds(left), "left"), (*speech_bounds(right, right_offset), "right")]
    )
    return samples.astype(np.float32), reference


@pytest.fixture(scope="module")
def two_result(two_speakers: tuple[Samples, Annotation], options: DiarizeOptions) -> Diarization:
    return diarize(two_speakers[0], options)


@pytest.fixture(scope="module")
def jfk(shared_media: Path) -> Samples:
    return decode_channel(shared_media / "jfk.flac")


def test_two_speakers_are_found_and_placed(
    two_speakers: tuple[Samples, Annotation], two_result: Diarization
) -> None:
    samples, reference = two_speakers
    assert len(two_result.speakers) == 2
    assert two_result.duration == pytest.approx(len(samples) / SR)
    uem = Timeline([Segment(0, two_result.duration)])
    assert der(reference, two_result, uem) <= 0.10
    starts = [t.start for t in two_result.turns]
    assert starts == sorted(starts)
    assert all(0 <= t.start < t.end <= two_result.duration for t in two_result.turns)
    assert two_result.turns[0].speaker == "SPEAKER_00"


@pytest.mark.slow
def test_ami_meetings_mean_der(shared_media: Path, options: DiarizeOptions) -> None:
    references: dict[str, list[tuple[float, float, str]]] = {}
    for line in (shared_media / "ami_dev.rttm").read_text().splitlines():
        fields = line.split()
        start, length = float(fields[3]), float(fields[4])
        references.setdefault(fields[1], []).append((start, start + length, fields[7]))
    # The UEM names the same files as the RTTM (dev00 -> ami_dev00.wav).
    scored: dict[str, Timeline] = {}
    for line in (shared_media / "ami_dev.uem").read_text().splitlines():
        name, _, start, end = line.split()
        scored[name] = Timeline([Segment(float(start), float(end))])
    errors = []
    for name in ("dev00", "dev01"):
        result = diarize(decode_channel(shared_media / f"ami_{name}.wav"), options)
        assert 2 <= len(result.speakers) <= 4
        errors.append(der(annotation(references[name]), result, scored[name]))
    assert float(np.mean(errors)) <= 0.35, errors


def test_one_speaker_stays_one(jfk: Samples, options: DiarizeOptions) -> None:
    result = diarize(jfk, options)
    assert result.speakers == ("SPEAKER_00",)
    speech = sum(t.end - t.start for t in result.turns)
    assert 6.0 < speech < 11.0  # JFK talks most of the 11 s, with pauses


def test_speaker_counts_are_honoured(
    jfk: Samples, two_speakers: tuple[Samples, Annotation]
) -> None:
    assert len(diarize(jfk, DiarizeOptions(num_speakers=2)).speakers) == 2
    assert len(diarize(two_speakers[0], DiarizeOptions(max_speakers=1)).speakers) == 1
    assert len(diarize(two_speakers[0], DiarizeOptions(min_speakers=3)).speakers) == 3


def test_invalid_options_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        DiarizeOptions(min_speakers=3, max_speakers=2)
    with pytest.raises(InvalidInputError):
        DiarizeOptions(num_speakers=0)
    with pytest.raises(InvalidInputError):
        diarize(np.zeros((2, SR), np.float32), DiarizeOptions())


def test_overlapping_talkers_both_get_the_overlap(
    shared_media: Path, two_speakers: tuple[Samples, Annotation]
) -> None:
    # As in a conversation: each talker alone first (the two-speaker file), then both
    # at once: the left sentence again with the right one starting 1 s into it.
    left = decode_channel(shared_media / "stereo_diarization.wav", 0)
    right = decode_channel(shared_media / "stereo_diarization.wav", 1)
    mixed = np.zeros(max(len(left), SR + len(right)), np.float32)
    mixed[: len(left)] += left
    mixed[SR : SR + len(right)] += right
    solo, reference = two_speakers
    samples = np.concatenate([solo, np.zeros(SR, np.float32), mixed])
    mix_start = len(solo) / SR + 1.0
    result = diarize(samples, DiarizeOptions())
    assert len(result.speakers) == 2
    turns = hypothesis(result)
    both = (
        turns.label_timeline(result.speakers[0])
        .crop(turns.label_timeline(result.speakers[1]).support(), mode="intersection")
        .crop(Segment(mix_start, result.duration))
    )
    # The right talker speaks ~2.2 s, all of it over the left one.
    right_talk = reference.label_timeline("right").duration()
    assert 1.0 < both.duration() < right_talk + 0.5
    assert both.extent().start > mix_start + 0.8  # not before the right talker starts


def test_silence_has_no_speakers() -> None:
    result = diarize(np.zeros(3 * SR, np.float32), DiarizeOptions())
    assert result.turns == ()
    assert result.speakers == ()
    assert result.duration == pytest.approx(3.0)


def test_progress_is_reported_and_rises(jfk: Samples) -> None:
    events: list[Progress] = []
    diarize(jfk, DiarizeOptions(), events.append)
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert {e.stage for e in events} == {STAGE}
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert len(fractions) >= 4


def test_models_load_once_per_process() -> None:
    assert load_diarizer(DiarizeOptions()) is load_diarizer(DiarizeOptions(num_speakers=2))


@pytest.mark.slow
def test_each_word_gets_its_speaker(
    two_speakers: tuple[Samples, Annotation],
    two_result: Diarization,
    engine_options: EngineOptions,
) -> None:
    samples, reference = two_speakers
    transcript = transcribe(samples, TranscribeOptions(engine=engine_options))
    labelled = assign_speakers(transcript, two_result)
    # Our labels are arbitrary names: map each to the reference talker it overlaps most.
    mapping = {
        label: max(
            reference.labels(),
            key=lambda ref: (
                reference.label_timeline(ref)
                .crop(hypothesis(two_result).label_timeline(label).support(), "intersection")
                .duration()
            ),
        )
        for label in two_result.speakers
    }
    boundary = reference.label_timeline("right")[0].start - PAUSE / 2
    words = labelled.words
    assert len(words) >= 20
    right = [
        mapping.get(str(w.speaker)) == ("left" if (w.start + w.end) / 2 < boundary else "right")
        for w in words
    ]
    assert sum(right) / len(right) >= 0.95
    assert all(s.speaker is not None for s in labelled.segments)
    assert all(w.speaker == s.speaker for s in labelled.segments for w in s.words)


def test_pyannote_backend_needs_a_token() -> None:
    with pytest.raises(InvalidInputError, match="token"):
        load_diarizer(DiarizeOptions(backend="pyannote"))


def test_pyannote_backend_without_the_extra_says_how_to_install() -> None:
    if importlib.util.find_spec("pyannote.audio") is not None:
        pytest.skip("pyannote.audio is installed here")
    with pytest.raises(ExtraNotInstalledError, match=r"reelscribe\[pyannote\]"):
        load_diarizer(DiarizeOptions(backend="pyannote", hf_token="hf_not_used"))


def test_pyannote_output_of_either_major_becomes_turns() -> None:
    from reelscribe.speakers.pyannote import to_turns

    ann = annotation([(3.0, 4.0, "B"), (0.5, 2.0, "A"), (1.5, 3.5, "B")])

    @dataclass
    class DiarizeOutput:  # pyannote.audio 4.x wraps the Annotation
        speaker_diarization: Annotation

    for output in (ann, DiarizeOutput(ann)):
        turns = to_turns(output)
        assert [(t.start, t.end, t.speaker) for t in turns] == [
            (0.5, 2.0, "SPEAKER_00"),
            (1.5, 3.5, "SPEAKER_01"),
            (3.0, 4.0, "SPEAKER_01"),
        ]


@pytest.mark.slow
def test_pyannote_backend_on_two_speakers(two_speakers: tuple[Samples, Annotation]) -> None:
    token = os.environ.get("REELSCRIBE_HF_TOKEN")
    if importlib.util.find_spec("pyannote.audio") is None or not token:
        pytest.skip(
            "needs pyannote.audio (pip install 'reelscribe[pyannote]'), REELSCRIBE_HF_TOKEN "
            "and access to the Hugging Face hub"
        )
    samples, reference = two_speakers
    result = diarize(samples, DiarizeOptions(backend="pyannote", hf_token=token))
    assert len(result.speakers) == 2
    assert der(reference, result, Timeline([Segment(0, result.duration)])) <= 0.10
