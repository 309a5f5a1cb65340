"""From clustered windows back to speaker turns, two labels where people overlap.

Clustered 1.5 s windows say *who* (a global speaker per window) to within ~0.75 s;
the segmentation says *when* to ~17 ms and where two people overlap, but with local
speakers that change meaning from chunk to chunk. Here the two meet:

1. Every speech frame takes the cluster of the nearest window (by centre): the
   first label. (Labelling all frames from the local speakers instead let the
   segmentation's mistakes win: it often keeps two similar voices as one local
   speaker, and confusion on the AMI excerpts tripled.)
2. In each chunk, each local speaker is matched to the cluster that covers most of
   the frames where it talks alone (overlapped frames are ambiguous); two local
   speakers of one chunk get different clusters where possible (Hungarian
   assignment), because the network separates them on purpose.
3. Where the aggregated count says two people talk, the second label is the cluster
   most chunks (edge-weighted) hear from a local speaker there, other than the first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from reelscribe.speakers.embedding import Window
from reelscribe.speakers.segmentation import Segmentation

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

#: Weight of a vote from a frame where the local speaker overlaps someone, relative
#: to one where it talks alone: only a tie-breaker for speakers never heard alone.
_OVERLAP_VOTE = 1e-3


def frame_clusters(seg: Segmentation, windows: Sequence[Window], labels: Ints) -> Ints:
    """Per global frame, the cluster of the window whose centre is nearest (-1: none)."""
    out = np.full(seg.num_frames, -1, dtype=np.int64)
    best = np.full(seg.num_frames, np.inf)
    times = seg.first_center + np.arange(seg.num_frames) * seg.frame_step
    for window, label in zip(windows, labels, strict=True):
        lo = max(0, seg.frame_at(window.start))
        hi = min(seg.num_frames, seg.frame_at(window.end) + 1)
        distance = np.abs(times[lo:hi] - window.center)
        closer = distance < best[lo:hi]
        out[lo:hi][closer] = label
        best[lo:hi][closer] = distance[closer]
    # Speech no window covers (overlapped stretches, which get no window of their
    # own) takes the window whose centre is nearest in time.
    missing = np.flatnonzero((out < 0) & (seg.count > 0))
    if len(missing) and len(windows):
        centers = np.array([w.center for w in windows])
        order = np.argsort(centers)
        nearest = np.abs(times[missing, None] - centers[None, order]).argmin(axis=1)
        out[missing] = labels[order[nearest]]
    return out


def local_to_global(seg: Segmentation, per_frame: Ints, num_clusters: int) -> Ints:
    """(chunks, local speakers) -> cluster index, -1 where a local speaker is silent."""
    chunks, frames, speakers = seg.activity.shape
    mapping = np.full((chunks, speakers), -1, dtype=np.int64)
    for chunk in range(chunks):
        offset = int(seg.offsets[chunk])
        span = min(frames, seg.num_frames - offset)
        if span <= 0:
            continue
        active = seg.activity[chunk, :span]
        clusters = per_frame[offset : offset + span]
        alone = active.sum(axis=1) == 1
        votes = np.zeros((speakers, num_clusters))
        for s in range(speakers):
            heard = active[:, s] & (clusters >= 0)
            votes[s] += np.bincount(clusters[heard & alone], minlength=num_clusters)
            votes[s] += _OVERLAP_VOTE * np.bincount(clusters[heard], minlength=num_clusters)
        rows = np.flatnonzero(votes.sum(axis=1) > 0)
        if len(rows) == 0:
            continue
        assigned_rows, assigned_cols = linear_sum_assignment(votes[rows], maximize=True)
        for r, c in zip(assigned_rows, assigned_cols, strict=True):
            mapping[chunk, rows[r]] = c
        # More active local speakers than clusters: the rest join their best match.
        for r in rows:
            if mapping[chunk, r] < 0:
                mapping[chunk, r] = int(np.argmax(votes[r]))
    return mapping


def frame_speakers(seg: Segmentation, per_frame: Ints, num_clusters: int) -> Bools:
    """(frames, clusters): who speaks in each global frame."""
    mapping = local_to_global(seg, per_frame, num_clusters)
    chunks, frames, speakers = seg.activity.shape
    score = np.zeros((seg.num_frames, num_clusters))
    norm = np.zeros(seg.num_frames)
    weights = seg.frame_weights.astype(np.float64)
    for chunk in range(chunks):
        offset = int(seg.offsets[chunk])
        span = min(frames, seg.num_frames - offset)
        if span <= 0:
            continue
        norm[offset : offset + span] += weights[:span]
        # OR, not sum: two local speakers mapped to one cluster are one voice.
        on = np.zeros((span, num_clusters), dtype=bool)
        for s in range(speakers):
            if mapping[chunk, s] >= 0:
                on[:, mapping[chunk, s]] |= seg.activity[chunk, :span, s]
        score[offset : offset + span] += on * weights[:span, None]
    score /= np.maximum(norm, 1e-8)[:, None]

    active = np.zeros((seg.num_frames, num_clusters), dtype=bool)
    speech = np.flatnonzero((seg.count > 0) & (per_frame >= 0))
    active[speech, per_frame[speech]] = True
    for frame in np.flatnonzero(seg.count > 1):
        ranked = [
            c for c in np.argsort(-score[frame]) if score[frame, c] > 0 and not active[frame, c]
        ]
        if ranked:
            active[frame, ranked[0]] = True
    return active
