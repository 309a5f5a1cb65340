"""Who speaks when, locally: segmentation-3.0 over sliding 10 s chunks.

The network looks at one 10 s chunk and answers, every ~17 ms, which of up to three
*local* speakers talk (at most two at once), as a "powerset": one probability for
each of the seven sets ∅, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}. Local speaker 0 of one
chunk has nothing to do with local speaker 0 of the next; clustering embeddings
links them later (:mod:`reelscribe.speakers.reconstruct`).

Chunks overlap (1 s step), so every moment is seen in up to ten contexts; averaging
the chunks' answers gives a steadier count of speakers than any single chunk, and
down-weighting chunk edges (where the network sees one side only) helps further.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from reelscribe.speakers.batches import run_batches
from reelscribe.speakers.weights import Networks, torch_module

#: Seconds between chunk starts: the step pyannote's 3.x pipelines use.
CHUNK_STEP = 1.0
#: Chunks per forward pass. SincNet's first layer holds 80 filtered copies of each
#: 10 s chunk (51 MB), so big batches thrash a CPU's caches and memory: 32 chunks ran
#: 18x slower than 4 on our 2-core machine. GPUs want bigger batches.
CPU_BATCH_SIZE = 4
GPU_BATCH_SIZE = 32

Floats = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Segmentation:
    #: Per chunk and chunk frame, which local speakers are active: (chunks, frames, 3).
    activity: Bools
    #: Global index of each chunk's first frame: (chunks,).
    offsets: Ints
    #: Weight of each chunk frame in the average (low at the chunk edges): (frames,).
    frame_weights: Floats
    #: Per global frame: the rounded weighted mean of the chunks' speaker counts.
    count: Ints
    #: Seconds between global frames, and the time of global frame 0's centre.
    frame_step: float
    first_center: float
    num_frames: int

    def frame_time(self, index: int | float) -> float:
        return self.first_center + index * self.frame_step

    def frame_at(self, seconds: float) -> int:
        """The global frame whose centre is nearest to ``seconds`` (clipped to the grid)."""
        index = round((seconds - self.first_center) / self.frame_step)
        return min(max(index, 0), self.num_frames - 1)


def powerset_table(num_speakers: int, max_simultaneous: int) -> Bools:
    """Row ``c`` says which local speakers powerset class ``c`` holds (row 0: nobody)."""
    sets = [()] + [
        combo
        for size in range(1, max_simultaneous + 1)
        for combo in combinations(range(num_speakers), size)
    ]
    table = np.zeros((len(sets), num_speakers), dtype=bool)
    for row, members in enumerate(sets):
        table[row, list(members)] = True
    return table


def segment(
    networks: Networks,
    samples: Floats,
    sample_rate: int,
    on_batch: Callable[[float], None] | None = None,
    workers: int = 1,
) -> Segmentation:
    """Runs the network over every chunk (``workers`` batches at a time) and aggregates
    the chunks' speaker counts."""
    torch = torch_module()
    cfg = networks.segmentation_config
    chunk_len = round(cfg.chunk_duration * sample_rate)
    step_len = round(CHUNK_STEP * sample_rate)
    # Enough chunks to reach the end; the last one (or the only one, for a short clip)
    # is padded with silence, whose frames are dropped below.
    num_chunks = 1 + max(0, math.ceil((len(samples) - chunk_len) / step_len))
    padded = np.zeros((num_chunks - 1) * step_len + chunk_len, dtype=np.float32)
    padded[: len(samples)] = samples
    table = powerset_table(cfg.num_speakers, cfg.max_simultaneous)

    batch_size = CPU_BATCH_SIZE if networks.device == "cpu" else GPU_BATCH_SIZE
    starts = list(range(0, num_chunks, batch_size))

    def run(first: int) -> Bools:
        last = min(first + batch_size, num_chunks)
        batch = np.stack(
            [padded[i * step_len : i * step_len + chunk_len] for i in range(first, last)]
        )
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).unsqueeze(1).to(networks.device)
            logits = networks.segmentation(tensor)
        # Hard decoding: the most likely set per frame, as speaker flags.
        decoded: Bools = table[logits.argmax(dim=-1).cpu().numpy()]
        return decoded

    def done(count: int) -> None:
        if on_batch is not None:
            on_batch(min(num_chunks, count * batch_size) / num_chunks)

    decoded = run_batches(run, starts, workers, done)
    activity = np.concatenate(decoded, axis=0)

    frames_per_chunk = activity.shape[1]
    offsets = np.round(np.arange(num_chunks) * CHUNK_STEP / cfg.frame_step).astype(np.int64)
    first_center = cfg.frame_duration / 2
    duration = len(samples) / sample_rate
    # Frames whose centre lies past the end of the audio only ever saw padding.
    num_frames = max(1, math.ceil((duration - first_center) / cfg.frame_step))
    num_frames = min(num_frames, int(offsets[-1]) + frames_per_chunk)
    weights = np.hamming(frames_per_chunk).astype(np.float32)

    total = np.zeros(num_frames, dtype=np.float64)
    norm = np.zeros(num_frames, dtype=np.float64)
    counts = activity.sum(axis=2)
    for chunk, offset in enumerate(offsets):
        stop = min(num_frames, int(offset) + frames_per_chunk)
        if stop <= offset:
            continue
        span = stop - int(offset)
        total[offset:stop] += weights[:span] * counts[chunk, :span]
        norm[offset:stop] += weights[:span]
    mean_count = total / np.maximum(norm, 1e-8)
    # Round half up (0.5 speakers is speech), never more than a frame can hold.
    count = np.minimum(np.floor(mean_count + 0.5), cfg.max_simultaneous).astype(np.int64)
    return Segmentation(
        activity=activity,
        offsets=offsets,
        frame_weights=weights,
        count=count,
        frame_step=cfg.frame_step,
        first_center=first_center,
        num_frames=num_frames,
    )
