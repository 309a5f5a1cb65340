from __future__ import annotations

import pytest

from reelscribe.errors import InvalidInputError
from reelscribe.models import TimeRange, format_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("75.5", 75.5),
        ("0", 0.0),
        ("01:15.5", 75.5),
        ("00:01:15.500", 75.5),
        ("1:02:03", 3723.0),
        (12, 12.0),
    ],
)
def test_parse_timestamp(text: str | int, seconds: float) -> None:
    assert parse_timestamp(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["-1", "abc", "1:75", "00:99:00", "1.2.3", ""])
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_timestamp(text)


def test_format_timestamp() -> None:
    assert format_timestamp(3725.5) == "01:02:05.500"
    assert format_timestamp(1.0, sep=",") == "00:00:01,000"
    assert format_timestamp(61.25, always_hours=False) == "01:01.250"


def test_time_range() -> None:
    assert TimeRange.parse(None, None) is None
    r = TimeRange.parse("00:00:05", "10")
    assert r is not None
    assert (r.start, r.end, r.duration) == (5.0, 10.0, 5.0)
    with pytest.raises(InvalidInputError, match="must be after start"):
        TimeRange.parse("10", "5")
    assert TimeRange().is_whole
