"""A recipe's settings: a frozen dataclass read from a YAML file, with ``--set KEY=VALUE``
overrides from the command line (each value read as YAML, so ``--set max_steps=20`` is an int
and ``--set 'corpora=[a, b]'`` a list)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; transformers depends on it

ConfigT = TypeVar("ConfigT")


def load_config(cls: type[ConfigT], path: Path, overrides: Sequence[str] = ()) -> ConfigT:
    """An instance of the dataclass ``cls`` from the YAML mapping in ``path`` and ``key=value``
    overrides. Lists become tuples (configs are frozen); an unknown key or a malformed
    override ends the program with a message naming the known keys."""
    if not is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    values: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise SystemExit(f"{path}: expected a mapping of config keys, not {type(values).__name__}")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        values[key.strip()] = yaml.safe_load(value)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SystemExit(f"unknown config keys {unknown} in {path} or --set (known: "
                         f"{sorted(known)})")
    frozen = {key: tuple(value) if isinstance(value, list) else value
              for key, value in values.items()}
    return cls(**frozen)
