"""Helper of the data-file tests: a malformed file is refused with its path and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from speech.errors import DataFileError


def assert_refused(read: Callable[[Path], object], path: Path, content: str, line: int,
                   message: str) -> DataFileError:
    """Write ``content`` to ``path`` and read it with ``read``, which must raise a
    :class:`DataFileError` matching ``message`` (a regular expression) whose text starts with
    ``path:line: ``; the error, for more checks."""
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFileError, match=message) as caught:
        read(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    return caught.value
