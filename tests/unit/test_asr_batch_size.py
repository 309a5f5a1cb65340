"""The batched pipeline's default batch size, per device."""

from __future__ import annotations


def test_gpu_batches_come_from_free_memory_and_never_drop_to_the_cpu_size() -> None:
    from reelscribe.asr.faster_whisper import default_batch_size

    gib = 1024**3
    assert default_batch_size("cpu") == 4
    assert default_batch_size("cuda", None) == 16  # free memory unknown
    assert default_batch_size("cuda", 1 * gib) == 8  # a small card still gets 8, not 4
    assert default_batch_size("cuda", 6 * gib) == 12
    assert default_batch_size("cuda", 140 * gib) == 32
