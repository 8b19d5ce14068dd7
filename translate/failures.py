"""A text the engine fails on costs only its own translation, never its neighbours'.

Translators take texts in batches (the lines of a file, the segments of a transcript). When a
batch fails, :func:`each_or_failure` translates each of its texts alone, so that the failure
is pinned on the texts that cause it and every other one is still translated; the callers turn
a failure into that text's ``error`` record (``medstream translate``) or an error note on its
translation (:meth:`translate.types.Translation.failed`: the transcribe cascade and the live
server). It works for any engine: ``run`` is whatever translates a batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger(__name__)


def each_or_failure(items: Sequence[T],
                    run: Callable[[Sequence[T]], Sequence[R]]) -> list[R | Exception]:
    """``run(items)``, one result per item in order; when that raises, each item alone, an
    item that fails on its own getting its exception instead of a result.

    ``run`` must return one result per item (a ValueError otherwise, which counts as its
    failure). Interrupts (KeyboardInterrupt, SystemExit) are not failures: they propagate.
    """
    if not items:
        return []
    try:
        return list(_checked(items, run))
    except Exception as error:  # any engine error fails the batch
        if len(items) == 1:
            _log(error)
            return [error]
        logger.debug("a batch of %d texts failed (%s); translating them one by one",
                     len(items), failure_message(error))
    results: list[R | Exception] = []
    for item in items:
        try:
            results.extend(_checked([item], run))
        except Exception as error:  # the item's own failure
            _log(error)
            results.append(error)
    return results


def failure_message(error: BaseException) -> str:
    """The kind of error and the first line of what it says (``RuntimeError: …``)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _checked(items: Sequence[T], run: Callable[[Sequence[T]], Sequence[R]]) -> Sequence[R]:
    found = run(items)
    if len(found) != len(items):
        raise ValueError(f"{len(found)} results for {len(items)} texts")
    return found


def _log(error: Exception) -> None:
    logger.warning("translation failed: %s", failure_message(error),
                   exc_info=logger.isEnabledFor(logging.DEBUG))
