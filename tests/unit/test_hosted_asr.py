"""The hosted engine's pure parts: reading verbose_json, and stitching pieces."""

from __future__ import annotations

import itertools
import math

from reelscribe.asr.base import AsrSegment, AsrWord
from reelscribe.asr.openai_compatible import Piece, parse_verbose_json, stitch
from reelscribe.asr.routing import falls_back
from reelscribe.errors import InvalidInputError, ModelUnavailableError, NetworkError

SR = 16_000


def test_verbose_json_words_join_into_their_segment_text() -> None:
    body = {
        "language": "english",
        "duration": 4.0,
        "text": "Hello, world. Bye.",
        "segments": [
            {"start": 0.0, "end": 2.0, "text": " Hello, world.", "avg_logprob": -0.1,
             "compression_ratio": 1.1, "no_speech_prob": 0.01},
            {"start": 2.5, "end": 3.5, "text": " Bye."},
        ],
        "words": [{"word": "Hello", "start": 0.0, "end": 0.8},
                  {"word": "world", "start": 0.9, "end": 1.9},
                  {"word": "Bye", "start": 2.6, "end": 3.4}],
    }  # fmt: skip
    segments, language = parse_verbose_json(body, 4.0)
    assert language == "en"
    assert [[w.word for w in s.words or ()] for s in segments] == [
        [" Hello,", " world."],
        [" Bye."],
    ]
    assert all("".join(w.word for w in s.words or ()) == s.text for s in segments)
    assert segments[0].words is not None
    assert math.isclose(segments[0].words[0].probability, math.exp(-0.1))
    # Missing statistics: the compression ratio is computed, the others are neutral.
    assert segments[1].compression_ratio > 0
    assert segments[1].no_speech_prob == 0.0


def test_a_plain_text_answer_is_one_segment_without_words() -> None:
    segments, language = parse_verbose_json({"text": "Just text."}, 3.0)
    assert language is None
    assert [(s.start, s.end, s.text, s.words) for s in segments] == [(0.0, 3.0, "Just text.", None)]


def _seg(words: list[tuple[str, float, float]]) -> AsrSegment:
    timed = tuple(AsrWord(a, b, t, 1.0) for t, a, b in words)
    return AsrSegment(timed[0].start, timed[-1].end, "".join(w.word for w in timed), timed,
                      0.0, 1.0, 0.0)  # fmt: skip


def test_a_seam_keeps_each_word_once_even_with_loose_edge_timings() -> None:
    # Cut at 5.0 s; the second piece starts at 4.0 s. The second piece times its first
    # whole word ("ask", really 4.9-5.6) from its very start, as Whisper often does.
    first = Piece(0, 6 * SR, -math.inf, 5.0, b"")
    second = Piece(4 * SR, 10 * SR, 5.0, math.inf, b"")
    a = [_seg([(" so", 3.0, 3.5), (" Americans,", 3.6, 4.4), (" ask", 4.9, 5.6),
               (" not", 5.7, 5.99)])]  # fmt: skip
    b = [_seg([(" cans,", 0.0, 0.4), (" ask", 0.0, 1.6), (" not", 1.7, 2.0),
               (" what", 2.1, 2.5)])]  # fmt: skip
    words = [w for s in stitch([first, second], [a, b]) for w in s.words or ()]
    assert [w.word for w in words] == [" so", " Americans,", " ask", " not", " what"]
    assert all(x.start <= y.start for x, y in itertools.pairwise(words))
    assert words[-1].start == 6.1  # on the whole timeline


def test_what_falls_back() -> None:
    class Aborted(NetworkError):
        code = "aborted"

    assert falls_back(NetworkError("down"))
    assert falls_back(RuntimeError("CUDA failed with error out of memory"))
    assert falls_back(ModelUnavailableError("no such model"))
    assert not falls_back(InvalidInputError("bad option"))
    assert not falls_back(Aborted("cancelled"))
    assert not falls_back(KeyboardInterrupt())
