"""How a direct upload is cut into parts."""

from __future__ import annotations

import pytest

from reelscribe.service.direct_uploads import MAX_PARTS, part_size_for, plan_parts

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "part_size", "sizes"),
    [
        (1, 5 * MiB, [1]),
        (5 * MiB, 5 * MiB, [5 * MiB]),
        (5 * MiB + 1, 5 * MiB, [5 * MiB, 1]),
        (11 * MiB, 5 * MiB, [5 * MiB, 5 * MiB, MiB]),
    ],
)
def test_parts_cover_the_file_in_order(size: int, part_size: int, sizes: list[int]) -> None:
    parts = plan_parts(size, part_size)
    assert [p.size for p in parts] == sizes
    assert [p.number for p in parts] == list(range(1, len(sizes) + 1))
    assert [p.start for p in parts] == [sum(sizes[:i]) for i in range(len(sizes))]


def test_part_size_grows_to_stay_within_s3s_part_count() -> None:
    assert part_size_for(4 * 1024**3, 16 * MiB) == 16 * MiB
    huge = 5 * MiB * MAX_PARTS + 1
    grown = part_size_for(huge, 5 * MiB)
    assert grown % MiB == 0
    assert grown > 5 * MiB
    assert len(plan_parts(huge, grown)) <= MAX_PARTS
