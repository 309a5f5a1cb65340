"""Grouping voice prints into speakers: spectral clustering, then a merge of look-alikes.

1. **Affinity.** Cosine similarity between window embeddings, pruned to each window's
   nearest neighbours (a dense matrix lets every weak similarity add up, and two
   speakers melt into one), symmetrised.
2. **How many speakers.** Unless the caller says, the largest gap among the smallest
   eigenvalues of the graph Laplacian (the "eigengap"): ``k`` well-separated groups
   give ``k`` eigenvalues near zero, then a jump.
3. **Who is who.** k-means on the rows of the first ``k`` eigenvectors.
4. **Merge.** Eigengap over-splits when the evidence is thin (a short clip, one voice
   that changes with the microphone distance), so two clusters whose mean voice prints
   are as alike as one person's are merged. Mean prints average out a window's noise:
   one speaker's halves agree far more than two speakers do, which makes this test
   much firmer than any threshold on single windows.
5. **Split.** The reverse: eigengap is relative, so two similar voices among very
   different ones (two people recorded alike, next to a third on the phone) can share
   a cluster. A cluster whose best two-way split gives mean prints as far apart as two
   different people's is split.

Between the two thresholds (alike enough to merge, different enough to split) the
eigengap's answer stands. A fixed ``num_speakers`` skips steps 4 and 5;
``min_speakers`` stops merging and ``max_speakers`` stops splitting.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

#: Fraction of the other windows each window stays linked to (at least ``MIN_NEIGHBOURS``).
NEIGHBOUR_FRACTION = 0.2
MIN_NEIGHBOURS = 3
#: Never more speakers than this unless ``max_speakers`` says so.
DEFAULT_MAX_SPEAKERS = 20
#: Cosine similarity of two clusters' mean embeddings above which they are one speaker.
MERGE_SIMILARITY = 0.7
#: ... and below which a cluster's two halves are two speakers. One speaker's halves
#: measured 0.65-0.85 on our recordings, two different speakers' 0.25-0.66.
SPLIT_SIMILARITY = 0.55
#: A split needs this many windows on each side: fewer give too noisy a mean print.
MIN_SPLIT_SIZE = 2


def cluster(embeddings: Floats, min_speakers: int = 1, max_speakers: int | None = None) -> Ints:
    """A cluster index (0..k-1) per embedding row; rows are L2-normalised vectors."""
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    high = min(n, max_speakers or DEFAULT_MAX_SPEAKERS)
    low = min(min_speakers, high)
    if high == 1:
        return np.zeros(n, dtype=np.int64)
    similarity = embeddings @ embeddings.T
    affinity = _prune(similarity)
    values, vectors = _laplacian_eigen(affinity)
    k = low if low == high else _eigengap(values, low, high)
    labels = _kmeans(vectors[:, :k], k) if k > 1 else np.zeros(n, dtype=np.int64)
    if low != high:
        labels = merge_similar(embeddings, labels, low)
        labels = split_distinct(embeddings, labels, high)
    return labels


def _prune(similarity: Floats) -> Floats:
    n = len(similarity)
    keep = min(n - 1, max(MIN_NEIGHBOURS, round(NEIGHBOUR_FRACTION * n)))
    ranked = similarity.copy()
    np.fill_diagonal(ranked, -np.inf)  # a window is not its own neighbour
    nearest = np.argsort(-ranked, axis=1)[:, :keep]
    rows = np.arange(n)[:, None]
    affinity = np.zeros_like(similarity)
    affinity[rows, nearest] = np.maximum(similarity[rows, nearest], 0.0)
    return ((affinity + affinity.T) / 2).astype(np.float32)


def _laplacian_eigen(affinity: Floats) -> tuple[Floats, Floats]:
    # The normalised Laplacian (I - D^-1/2 A D^-1/2): its eigenvalues lie in [0, 2]
    # whatever the number of windows, so one gap rule fits short and long recordings.
    degree = np.maximum(affinity.sum(axis=1), 1e-8)
    scale = 1.0 / np.sqrt(degree)
    laplacian = np.eye(len(affinity)) - scale[:, None] * affinity * scale[None, :]
    values, vectors = np.linalg.eigh(laplacian.astype(np.float64))
    return values.astype(np.float32), vectors.astype(np.float32)


def _eigengap(values: Floats, low: int, high: int) -> int:
    # gaps[i] is the jump after the (i+1)-th smallest eigenvalue: k = i + 1 groups.
    gaps = np.diff(values[: high + 1])
    candidates = np.arange(low, min(high, len(gaps)) + 1)
    if len(candidates) == 0:
        return low
    return int(candidates[np.argmax(gaps[candidates - 1])])


def _kmeans(points: Floats, k: int, restarts: int = 10, iterations: int = 100) -> Ints:
    """Lloyd's k-means with k-means++ seeding, best of ``restarts``; seeded, so a
    recording always gets the same answer. (scikit-learn's costs seconds to import.)"""
    data = points.astype(np.float64)
    rng = np.random.default_rng(0)
    best_labels = np.zeros(len(data), dtype=np.int64)
    best_inertia = np.inf
    for _ in range(restarts):
        centers = _seed(data, k, rng)
        labels = np.zeros(len(data), dtype=np.int64)
        for step in range(iterations):
            distances = ((data[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
            new_labels = np.argmin(distances, axis=1)
            if step and np.array_equal(new_labels, labels):
                break
            labels = new_labels
            for c in range(k):
                members = data[labels == c]
                if len(members):  # an emptied cluster keeps its old centre
                    centers[c] = members.mean(axis=0)
        inertia = float(((data - centers[labels]) ** 2).sum())
        if inertia < best_inertia:
            best_inertia, best_labels = inertia, labels.astype(np.int64)
    return best_labels


def _seed(
    data: npt.NDArray[np.float64], k: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """k-means++: each next centre drawn with probability proportional to its squared
    distance from the nearest centre so far, so centres start spread out."""
    centers = [data[rng.integers(len(data))]]
    for _ in range(1, k):
        distances = np.min([((data - c) ** 2).sum(axis=1) for c in centers], axis=0)
        total = distances.sum()
        if total <= 0:  # fewer distinct points than clusters
            centers.append(data[rng.integers(len(data))])
            continue
        centers.append(data[rng.choice(len(data), p=distances / total)])
    return np.array(centers)


def centroids(embeddings: Floats, labels: Ints) -> Floats:
    """The normalised mean embedding of each cluster (rows in label order)."""
    k = int(labels.max()) + 1 if len(labels) else 0
    means: Floats = np.stack([embeddings[labels == c].mean(axis=0) for c in range(k)])
    norms: Floats = np.linalg.norm(means, axis=1, keepdims=True)
    normalised: Floats = (means / np.maximum(norms, 1e-8)).astype(np.float32)
    return normalised


def merge_similar(embeddings: Floats, labels: Ints, min_clusters: int = 1) -> Ints:
    """Merges the most alike pair of clusters while their means are alike enough."""
    labels = _renumber(labels)
    while labels.max() + 1 > min_clusters:
        means = centroids(embeddings, labels)
        sim = means @ means.T
        np.fill_diagonal(sim, -np.inf)
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[a, b] < MERGE_SIMILARITY:
            break
        labels = _renumber(np.where(labels == b, a, labels))
    return labels


def split_distinct(embeddings: Floats, labels: Ints, max_clusters: int) -> Ints:
    """Splits clusters whose two halves sound like two people, up to ``max_clusters``."""
    labels = _renumber(labels)
    pending = list(range(int(labels.max()) + 1))
    while pending and labels.max() + 1 < max_clusters:
        c = pending.pop()
        members = np.flatnonzero(labels == c)
        if len(members) < 2 * MIN_SPLIT_SIZE:
            continue
        halves = _bisect(embeddings[members])
        sizes = np.bincount(halves, minlength=2)
        if sizes.min() < MIN_SPLIT_SIZE:
            continue
        means = centroids(embeddings[members], halves)
        if float(means[0] @ means[1]) >= SPLIT_SIMILARITY:
            continue
        new = int(labels.max()) + 1
        labels[members[halves == 1]] = new
        pending += [c, new]  # either half may hold yet another voice
    return labels


def _bisect(embeddings: Floats) -> Ints:
    """The most natural two-way split of one cluster's windows (spectral, like step 3)."""
    _, vectors = _laplacian_eigen(_prune(embeddings @ embeddings.T))
    return _kmeans(vectors[:, :2], 2)


def _renumber(labels: Ints) -> Ints:
    _, dense = np.unique(labels, return_inverse=True)
    return dense.astype(np.int64)
