"""Errors a user can cause. Each one says what went wrong and what to do about it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class MedstreamError(Exception):
    """Base class of every error medstream raises on purpose (never a bug)."""


class AudioDecodeError(MedstreamError):
    """A file could not be read as audio: missing, empty, corrupt or of an unsupported kind."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read audio from {path}: {reason}")


class ModelNotFoundError(MedstreamError):
    """No location in the model catalog's search order held the requested model."""

    def __init__(self, name: str, tried: Sequence[str], hint: str) -> None:
        self.name = name
        self.tried = list(tried)
        lines = "\n".join(f"  - {attempt}" for attempt in self.tried)
        super().__init__(f"model '{name}' was not found. Tried:\n{lines}\n{hint}")


class ModelIntegrityError(MedstreamError):
    """A packaged model's weights do not match the checksum the catalog pins."""


class VocabularyError(MedstreamError):
    """A vocabulary (term list) file is missing or unreadable."""


class InvalidOptionError(MedstreamError):
    """An option value is not acceptable (unknown language, task, device …)."""


class DataFileError(MedstreamError):
    """A data file (manifest, corpus, glossary, term list, pattern file …) is missing or does
    not have the format its reader expects. The message starts ``path:line:`` (the 1-based
    line, where one applies), as a compiler's does, so editors can jump to it."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")
