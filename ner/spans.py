"""Small helpers over character spans shared by the recognizers and the rule engine's steps."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import Any, TypeVar

T = TypeVar("T")


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


def non_overlapping(items: Iterable[T], span: Callable[[T], tuple[int, int]],
                    key: Callable[[T], Any]) -> list[T]:
    """The items whose ``span`` (start, end) overlaps no other chosen one, taken greedily in
    ``key`` order (the first in that order wins an overlap); sorted by start. The one
    precedence loop of the recognizer's merge, the view's heads and the rule engine."""
    chosen: list[T] = []
    starts: list[int] = []
    ends: list[int] = []
    for item in sorted(items, key=key):
        start, end = span(item)
        index = bisect_left(starts, start)
        if index > 0 and ends[index - 1] > start:
            continue
        if index < len(chosen) and starts[index] < end:
            continue
        chosen.insert(index, item)
        starts.insert(index, start)
        ends.insert(index, end)
    return chosen


def _bounds(span: tuple[int, int, int]) -> tuple[int, int]:
    return span[0], span[1]


def leftmost_longest(spans: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Non-overlapping ``(start, end, rank)`` spans: leftmost first, then longest, then the
    lowest rank (its order in the rule file); the rest are dropped. Sorted by start."""
    return non_overlapping(spans, _bounds, lambda s: (s[0], s[0] - s[1], s[2]))


def longest_first(spans: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Non-overlapping ``(start, end, kind)`` spans chosen longest first (then leftmost), so a
    longer phrase ("not ruled out") beats the shorter one inside it ("ruled out"). Sorted by
    start."""
    return non_overlapping(spans, _bounds, lambda s: (s[0] - s[1], s[0]))
