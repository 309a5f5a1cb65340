"""Breaking one cue's words into lines: fewest lines first, then balanced.

Words are never split. A word longer than a line stands alone on its line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from reelscribe.formats.tokens import CLAUSE_END, SENTENCE_END, Token, join_tokens

# A line break after punctuation is worth this much imbalance (in squared
# characters: 50 ≈ lines differing by 10 characters), so a two-line cue breaks at
# the comma when that is not far from the middle.
_PUNCT_BONUS = 50.0


class LineFill:
    """Greedy line filling, one token at a time. Greedy gives the fewest lines,
    which makes it the feasibility test of the cue search; ``add`` is O(1)."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.lines = 0
        self.chars = 0  # length of the whole joined text
        self._current = 0  # length of the last line
        self._current_overlong = False

    def add(self, token: Token) -> int:
        """Appends a token; returns the number of lines now needed."""
        width = len(token.text)
        sep = 1 if token.space_before else 0
        overlong = width > self.max_chars
        self.chars += width if self.lines == 0 else sep + width
        if self.lines == 0:
            self.lines, self._current = 1, width
        elif overlong or self._current_overlong or self._current + sep + width > self.max_chars:
            self.lines += 1
            self._current = width
        else:
            self._current += sep + width
        self._current_overlong = overlong
        return self.lines


def line_count(tokens: Sequence[Token], max_chars: int) -> int:
    fill = LineFill(max_chars)
    for token in tokens:
        fill.add(token)
    return fill.lines


def layout_lines(tokens: Sequence[Token], max_chars: int) -> tuple[str, ...]:
    """The tokens as the fewest lines of at most ``max_chars`` (a longer word alone
    on its line), with lengths as even as the word boundaries allow."""
    n_lines = line_count(tokens, max_chars)
    if n_lines <= 1:
        return (join_tokens(tokens),)
    n = len(tokens)
    # best[k][j]: cheapest way to set tokens[:j] as k lines; back[k][j]: where line k starts.
    best = [[math.inf] * (n + 1) for _ in range(n_lines + 1)]
    back = [[0] * (n + 1) for _ in range(n_lines + 1)]
    best[0][0] = 0.0
    for k in range(1, n_lines + 1):
        for j in range(1, n + 1):
            for i in range(j - 1, -1, -1):
                width = len(join_tokens(tokens[i:j]))
                if width > max_chars and j - i > 1:
                    break  # wider still as i moves left
                if best[k - 1][i] == math.inf:
                    continue
                cost = best[k - 1][i] + width * width
                if j < n and _punctuated(tokens[j - 1].text):
                    cost -= _PUNCT_BONUS
                if cost < best[k][j]:
                    best[k][j], back[k][j] = cost, i
    lines: list[str] = []
    j = n
    for k in range(n_lines, 0, -1):
        i = back[k][j]
        lines.append(join_tokens(tokens[i:j]))
        j = i
    return tuple(reversed(lines))


def _punctuated(text: str) -> bool:
    return bool(SENTENCE_END.search(text) or CLAUSE_END.search(text))
