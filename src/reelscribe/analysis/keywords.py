"""Keywords and keyphrases: YAKE's statistics merged with embedding relevance.

YAKE (no model, a few milliseconds) proposes phrases of one to three words from the
transcript's own text; each is then scored by how close its embedding lies to the
transcript's centroid, and the two ranks are averaged. Near-duplicates ("software",
"the software") are dropped by similarity, so the list covers different things.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from reelscribe.analysis.results import Keyword
from reelscribe.errors import ExtraNotInstalledError

CANDIDATES = 40
#: Two phrases more similar than this say the same thing.
DUPLICATE = 0.85

#: Spoken fillers YAKE's stop-word lists miss; never a keyword on their own.
FILLERS = frozenset({
    "yeah", "yes", "yep", "no", "nope", "okay", "ok", "um", "uh", "hmm", "mm", "erm", "ah",
    "oh", "right", "well", "like", "so", "just", "really", "actually", "basically", "gonna",
    "wanna", "kind", "sort", "thing", "things", "stuff", "put", "get", "got", "find", "go",
})  # fmt: skip

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


def yake_candidates(text: str, language: str, top: int = CANDIDATES) -> list[str]:
    """YAKE's phrases, best first (its scores are lower-is-better)."""
    try:
        import yake
    except ImportError as exc:
        raise ExtraNotInstalledError(
            "keywords need yake: pip install 'reelscribe[analysis]'"
        ) from exc
    lang = language.split("-")[0].lower() or "en"
    try:
        extractor = yake.KeywordExtractor(lan=lang, n=3, dedupLim=0.8, top=top)
    except (OSError, LookupError):  # no stop-word list for the language
        extractor = yake.KeywordExtractor(lan="en", n=3, dedupLim=0.8, top=top)
    return [str(phrase) for phrase, _score in extractor.extract_keywords(text)]


def keywords(
    text: str,
    language: str,
    centroid: npt.NDArray[np.float32],
    embed: Embed,
    count: int,
) -> tuple[Keyword, ...]:
    """``count`` keyphrases of ``text``; ``centroid`` is its mean sentence embedding."""
    if count <= 0 or not text.strip():
        return ()
    candidates = [c for c in yake_candidates(text, language)
                  if _in_text(c, text) and not _filler(c)]  # fmt: skip
    if not candidates:
        return ()
    vectors = embed(candidates)
    relevance = vectors @ centroid
    n = len(candidates)
    # Ranks, not raw scores: YAKE's scale varies by text, cosine's does not.
    yake_rank = 1.0 - np.arange(n) / n
    order = np.argsort(-relevance)
    embed_rank = np.empty(n)
    embed_rank[order] = 1.0 - np.arange(n) / n
    merged = 0.5 * yake_rank + 0.5 * embed_rank
    picked: list[int] = []
    for i in np.argsort(-merged):
        if any(_overlaps(candidates[i], candidates[j]) or float(vectors[i] @ vectors[j])
               > DUPLICATE for j in picked):  # fmt: skip
            continue
        picked.append(int(i))
        if len(picked) == count:
            break
    return tuple(Keyword(candidates[i], round(float(merged[i]), 4)) for i in picked)


def _filler(phrase: str) -> bool:
    return all(w.lower().strip(".,'’") in FILLERS for w in phrase.split())


def _overlaps(a: str, b: str) -> bool:
    """One phrase inside the other ("documentation" / "documentation files")."""
    x, y = f" {a.lower()} ", f" {b.lower()} "
    return x in y or y in x


def _in_text(phrase: str, text: str) -> bool:
    """YAKE may glue words across punctuation; keep only phrases said as written."""
    pattern = r"\b" + r"\s+".join(re.escape(w) for w in phrase.split()) + r"\b"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None
