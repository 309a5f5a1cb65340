"""The offline diarizer: segmentation-3.0 + CAM++ + spectral clustering, all on this machine.

In processing order:

1. :mod:`~reelscribe.speakers.segmentation` finds speech and overlap (10 s chunks).
2. :mod:`~reelscribe.speakers.embedding` takes a voice print of every 1.5 s of speech.
3. :mod:`~reelscribe.speakers.clustering` groups the prints into speakers; windows
   shorter than :data:`RELIABLE_WINDOW` only join the groups afterwards (nearest mean
   print), since a fraction of a second of voice is too little to found a speaker on.
4. :mod:`~reelscribe.speakers.reconstruct` lays the speakers back on the
   segmentation's frames, two at once where people overlap; runs become turns.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from reelscribe.progress import ProgressCallback, report
from reelscribe.speakers.base import SAMPLE_RATE, Diarization, DiarizeOptions, SpeakerTurn
from reelscribe.speakers.clustering import centroids, cluster
from reelscribe.speakers.embedding import Window, cut_windows, embed
from reelscribe.speakers.reconstruct import frame_clusters, frame_speakers
from reelscribe.speakers.segmentation import Segmentation, segment
from reelscribe.speakers.weights import (
    Networks,
    load_networks,
    pick_device,
    set_torch_threads,
    usable_cpus,
)

STAGE = "diarize"
#: Windows at least this long found clusters; shorter ones join the nearest.
RELIABLE_WINDOW = 0.75
#: At most this many windows found the clusters (an hour of speech has ~4,800): the
#: eigendecomposition grows with the cube of their number. The rest join the nearest.
MAX_FOUNDING_WINDOWS = 3000
#: Same-speaker turns closer than this are one turn (a breath, not a change).
MIN_GAP = 0.1
#: Progress shares of the two network passes (clustering is quick).
_SEGMENT_SHARE = 0.45
_EMBED_SHARE = 0.5

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


@dataclass(slots=True)
class LocalDiarizer:
    networks: Networks
    # Serialises runs: two at once would only fight over the same cores (and GPU).
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(cls, options: DiarizeOptions) -> LocalDiarizer:
        return cls(networks=load_networks(pick_device(options.device)))

    def diarize(
        self,
        samples: Floats,
        options: DiarizeOptions,
        progress: ProgressCallback | None = None,
    ) -> Diarization:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        duration = len(samples) / SAMPLE_RATE
        with self._lock:
            turns = self._turns(samples, options, progress)
        report(progress, STAGE, 1.0, f"{len({t.speaker for t in turns})} speakers")
        return Diarization(turns=turns, duration=duration)

    def _turns(
        self, samples: Floats, options: DiarizeOptions, progress: ProgressCallback | None
    ) -> tuple[SpeakerTurn, ...]:
        if len(samples) < SAMPLE_RATE // 10:  # under 0.1 s: nothing to tell apart
            return ()
        # Parallel batches, each on one torch thread (see speakers.batches); a GPU
        # takes one batch at a time.
        workers = usable_cpus(options.cpu_threads) if self.networks.device == "cpu" else 1
        set_torch_threads(1)

        def seg_progress(done: float) -> None:
            report(progress, STAGE, _SEGMENT_SHARE * done, "finding speech")

        seg = segment(self.networks, samples, SAMPLE_RATE, seg_progress, workers)
        windows = cut_windows(speech_regions(seg))
        if not windows:
            return ()

        def emb_progress(done: float) -> None:
            report(progress, STAGE, _SEGMENT_SHARE + _EMBED_SHARE * done, "voice prints")

        embeddings = embed(self.networks, samples, SAMPLE_RATE, windows, emb_progress, workers)
        low, high = options.speaker_bounds()
        labels = cluster_windows(windows, embeddings, low, high)
        num_clusters = int(labels.max()) + 1
        active = frame_speakers(seg, frame_clusters(seg, windows, labels), num_clusters)
        return to_turns(seg, active, len(samples) / SAMPLE_RATE)


def speech_regions(seg: Segmentation) -> list[tuple[float, float]]:
    """(start, end) seconds of each run of frames where exactly one person speaks.

    Overlapped speech is left out: a voice print of two voices at once resembles
    neither and pulls clusters together. A stretch of speech that is overlapped
    throughout is kept whole, or it would have no voice print at all.
    """
    speech = seg.count > 0
    single = seg.count == 1
    regions: list[tuple[float, float]] = []
    for first, last in _runs(speech):
        inner = _runs(single[first : last + 1])
        spans = [(first + a, first + b) for a, b in inner] if inner else [(first, last)]
        for a, b in spans:
            start = max(0.0, seg.frame_time(a) - seg.frame_step / 2)
            regions.append((start, seg.frame_time(b) + seg.frame_step / 2))
    return regions


def cluster_windows(
    windows: Sequence[Window], embeddings: Floats, low: int, high: int | None
) -> Ints:
    """Clusters the founding windows (long enough, evenly thinned out on very long
    recordings), then gives every other window its nearest cluster."""
    founding = np.array([w.duration >= RELIABLE_WINDOW for w in windows])
    if not founding.any():  # only snippets: they are all there is to go on
        founding[:] = True
    chosen = np.flatnonzero(founding)
    if len(chosen) > MAX_FOUNDING_WINDOWS:
        keep = chosen[np.linspace(0, len(chosen) - 1, MAX_FOUNDING_WINDOWS).round().astype(int)]
        founding[:] = False
        founding[keep] = True
    labels = np.zeros(len(windows), dtype=np.int64)
    labels[founding] = cluster(embeddings[founding], low, high)
    if not founding.all():
        means = centroids(embeddings[founding], labels[founding])
        labels[~founding] = np.argmax(embeddings[~founding] @ means.T, axis=1)
    return labels


def to_turns(
    seg: Segmentation, active: npt.NDArray[np.bool_], duration: float
) -> tuple[SpeakerTurn, ...]:
    """Runs of active frames per cluster, as turns named by first appearance."""
    spans: list[tuple[float, float, int]] = []
    for c in range(active.shape[1]):
        previous: tuple[float, float] | None = None
        for first, last in _runs(active[:, c]):
            start = max(0.0, seg.frame_time(first) - seg.frame_step / 2)
            end = min(duration, seg.frame_time(last) + seg.frame_step / 2)
            if previous is not None and start - previous[1] < MIN_GAP:
                previous = (previous[0], end)
                continue
            if previous is not None:
                spans.append((previous[0], previous[1], c))
            previous = (start, end)
        if previous is not None:
            spans.append((previous[0], previous[1], c))
    spans.sort()
    names: dict[int, str] = {}
    turns = []
    for start, end, c in spans:
        if end <= start:
            continue
        name = names.setdefault(c, f"SPEAKER_{len(names):02d}")
        turns.append(SpeakerTurn(start=round(start, 3), end=round(end, 3), speaker=name))
    return tuple(turns)


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last) indices of each run of True."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]
