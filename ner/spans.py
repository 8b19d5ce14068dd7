"""Small helpers over character spans shared by the rule engine's steps."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate


class SpanIndex:
    """A fixed set of ``(start, end)`` character spans that answers "does this overlap any?"

    in O(log n): spans are sorted by start, with the running maximum of their ends.
    """

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        ordered = sorted(spans)
        self._starts = [start for start, _ in ordered]
        self._max_ends = list(accumulate((end for _, end in ordered), max))

    def overlaps(self, start: int, end: int) -> bool:
        """True when some span shares at least one character with ``start:end``."""
        before = bisect_left(self._starts, end)
        return before > 0 and self._max_ends[before - 1] > start


def leftmost_longest(spans: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Non-overlapping ``(start, end, rank)`` spans: leftmost first, then longest, then the
    lowest rank (its order in the rule file); the rest are dropped. Sorted by start."""
    chosen: list[tuple[int, int, int]] = []
    last_end = -1
    for start, end, rank in sorted(spans, key=lambda s: (s[0], s[0] - s[1], s[2])):
        if start >= last_end:
            chosen.append((start, end, rank))
            last_end = end
    return chosen


def longest_first(spans: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Non-overlapping ``(start, end, kind)`` spans chosen longest first (then leftmost), so a
    longer phrase ("not ruled out") beats the shorter one inside it ("ruled out"). Sorted by
    start."""
    chosen: list[tuple[int, int, int]] = []
    starts: list[int] = []
    for span in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        start, end, _ = span
        index = bisect_left(starts, start)
        if index > 0 and chosen[index - 1][1] > start:
            continue
        if index < len(chosen) and chosen[index][0] < end:
            continue
        chosen.insert(index, span)
        starts.insert(index, start)
    return chosen
