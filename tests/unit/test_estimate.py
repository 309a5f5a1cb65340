"""The estimate arithmetic: speeds learnt as medians per step (and model and device for
ASR), Whisper's 30-second window, defaults labelled as such, prices, a finished job's
actual figures; and the ranged file view's byte budget."""

from __future__ import annotations

import io

import pytest

from reelscribe.errors import InvalidInputError, SourceTooLargeError
from reelscribe.models import TimeRange
from reelscribe.pipeline.estimate import (
    Prices,
    SpeedTable,
    StepSample,
    actual_of,
    estimate_run,
    samples_of,
)
from reelscribe.pipeline.remote_probe import BLOCK, DurationUnknownError, RangedFile

RESULT = {
    "start": 2.0,
    "end": 9.0,
    "media": {"duration": 11.0},
    "timings": {"fetch": 0.07, "transcribe": 3.0, "upload": 0.007},
    "transcript": {"model": {"name": "base", "device": "cpu"}},
}


def test_speeds_are_medians_per_step_model_and_device() -> None:
    samples = [StepSample("transcribe", s, 60.0, "base", "cpu") for s in (6.0, 9.0, 600.0)]
    samples += [StepSample("transcribe", 1.0, 60.0, "tiny", "cpu")]
    samples += [StepSample("render", 0.6, 60.0, "base", "cpu")]
    table = SpeedTable.learn(samples)
    base = table.speed("transcribe", "base", "cpu")
    assert (base.rate, base.basis, base.samples) == (pytest.approx(0.15), "measured", 3)
    assert table.speed("transcribe", "tiny", "cpu").rate == pytest.approx(1 / 60)
    # Another model or device has not been measured: a default, labelled so.
    assert table.speed("transcribe", "small", "cpu").basis == "default"
    assert table.speed("transcribe", "base", "cuda").basis == "default"
    # Rendering does not depend on the model or the device.
    assert table.speed("render", "small", "cuda").basis == "measured"


def test_defaults_scale_with_model_size_and_device() -> None:
    table = SpeedTable()
    base = table.speed("transcribe", "base", "cpu").rate
    assert table.speed("transcribe", "large-v3", "cpu").rate > 10 * base
    assert table.speed("transcribe", "base", "cuda").rate < base
    assert table.speed("some_new_stage", "base", "cpu").basis == "default"


def test_short_audio_costs_a_whole_whisper_window() -> None:
    # 3 s for 11 s of audio is 3 s per 30-second window, so 7 s costs the same 3 s.
    table = SpeedTable.learn([StepSample("transcribe", 3.0, 11.0, "base", "cpu"),
                              StepSample("audio", 0.11, 11.0, "base", "cpu")])  # fmt: skip
    estimate = estimate_run(
        ["audio", "transcribe"], 11.0, TimeRange(2.0, 9.0), max_seconds=100.0,
        speeds=table, prices=Prices(cpu_per_hour=3.6), model="base", device="cpu",
    )  # fmt: skip
    steps = {s.name: s.seconds for s in estimate.steps}
    assert steps == {"audio": pytest.approx(0.07), "transcribe": pytest.approx(3.0)}
    assert estimate.media_seconds == 7.0
    assert estimate.basis == "measured"
    assert estimate.cost.compute == pytest.approx(estimate.seconds * 0.001)


def test_ranges_past_the_media_or_the_limit_are_refused() -> None:
    context = {"speeds": SpeedTable(), "prices": Prices(), "model": "base", "device": "cpu"}
    with pytest.raises(InvalidInputError) as past:
        estimate_run(["probe"], 11.0, TimeRange(12.0, None), max_seconds=100.0, **context)
    assert past.value.code == "range_beyond_media"
    with pytest.raises(SourceTooLargeError):
        estimate_run(["probe"], 3600.0, None, max_seconds=600.0, **context)
    whole = estimate_run(["probe"], 11.0, TimeRange(5.0, 60.0), max_seconds=100.0, **context)
    assert whole.media_seconds == 6.0  # an end past the media is the media's end


def test_prices_per_device_and_per_engine_minute() -> None:
    prices = Prices(cpu_per_hour=1.0, gpu_per_hour=10.0, per_audio_minute={"hosted": 0.006})
    assert prices.cost(3600.0, 600.0, "local", "cpu").total == pytest.approx(1.0)
    assert prices.cost(360.0, 600.0, "local", "cuda").total == pytest.approx(1.0)
    hosted = prices.cost(0.0, 600.0, "hosted", "cpu")
    assert (hosted.compute, hosted.audio) == (0.0, pytest.approx(0.06))


def test_a_finished_jobs_result_gives_samples_and_its_actual_figures() -> None:
    samples = samples_of(RESULT)
    assert {s.step for s in samples} == {"fetch", "transcribe", "upload"}
    assert all(s.media_seconds == 7.0 and s.model == "base" for s in samples)
    actual = actual_of(RESULT, Prices(cpu_per_hour=3600.0))
    assert actual is not None
    assert actual.seconds == pytest.approx(3.077)
    assert actual.cost.compute == pytest.approx(3.077)
    assert actual_of({"media": {"duration": 1.0}}, Prices()) is None  # no timings kept
    assert samples_of({"timings": {"fetch": 1.0}}) == []  # no media: nothing to learn


def test_the_ranged_file_reads_blocks_once_and_keeps_to_its_budget() -> None:
    data = bytes(range(256)) * (BLOCK * 8 // 256)
    reads: list[tuple[int, int]] = []

    def read_range(start: int, end: int) -> bytes:
        reads.append((start, end))
        return data[start : end + 1]

    file = RangedFile(len(data), read_range, max_bytes=3 * BLOCK, first=data[:BLOCK])
    assert file.read(10) == data[:10]
    assert reads == []  # the first block came with the first answer
    file.seek(-5, io.SEEK_END)
    assert file.read() == data[-5:]
    file.seek(-5, io.SEEK_END)
    assert file.read() == data[-5:]
    assert reads == [(len(data) - BLOCK, len(data) - 1)]  # read once
    file.seek(3 * BLOCK)
    assert file.read(10) == data[3 * BLOCK : 3 * BLOCK + 10]
    file.seek(5 * BLOCK)
    with pytest.raises(DurationUnknownError):  # a fourth block would be over the budget
        file.read(10)
    assert file.bytes_read == 3 * BLOCK


def test_hosted_engines_are_priced_per_audio_minute_under_their_name() -> None:
    from reelscribe.pipeline.estimate import engine_of_result, engine_of_route

    assert engine_of_route("hosted-then-local") == engine_of_route("hosted") == "hosted"
    assert engine_of_route("local-then-hosted") == engine_of_route(None) == "local"
    assert engine_of_result({"name": "openai-compatible", "model": "whisper-1"}) == "hosted"
    assert engine_of_result({"name": "faster-whisper", "model": "base"}) == "local"
    assert engine_of_result(None) == "local"
