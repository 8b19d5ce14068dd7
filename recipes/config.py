"""A recipe's settings and command line: a frozen dataclass read from a YAML file, with
``--set KEY=VALUE`` overrides (each value read as YAML, so ``--set max_steps=20`` is an int and
``--set 'corpora=[a, b]'`` a list), and the ``--config``/``--output`` arguments every
``recipes/*/train.py`` takes."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; transformers depends on it

ConfigT = TypeVar("ConfigT")

REPO = Path(__file__).resolve().parents[1]
"""The repository root: relative paths in a config are read from here."""

logger = logging.getLogger("recipes")


def load_config(cls: type[ConfigT], path: Path, overrides: Sequence[str] = ()) -> ConfigT:
    """An instance of the dataclass ``cls`` from the YAML mapping in ``path`` and ``key=value``
    overrides. Lists become tuples (configs are frozen) and numbers given to float fields
    become floats (YAML 1.1 reads ``1e-4`` as a string); an unknown key or a malformed override
    ends the program with a message naming the known keys."""
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
    types = {f.name: str(f.type) for f in fields(cls)}
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise SystemExit(f"unknown config keys {unknown} in {path} or --set (known: "
                         f"{sorted(types)})")
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
        elif isinstance(value, str | int) and not isinstance(value, bool) and \
                types[key].startswith("float"):
            try:
                values[key] = float(value)
            except ValueError:
                raise SystemExit(f"{key} must be a number, not {value!r}") from None
    return cls(**values)


def start(argv: Sequence[str] | None, cls: type[ConfigT], doc: str | None
          ) -> tuple[ConfigT, Path]:
    """A recipe's command line (``--config FILE --output DIR [--set KEY=VALUE]…``): logging set
    up, the config read, the output folder created."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="a YAML file in conf/")
    parser.add_argument("--output", type=Path, required=True, help="where the run goes")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (YAML value; repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(cls, args.config, args.set)
    if getattr(config, "threads", 1) > 1 and "OMP_WAIT_POLICY" not in os.environ:
        logger.warning("OMP_WAIT_POLICY is not set: on a CPU shared with other jobs, spinning "
                       "OpenMP threads make training several times slower; run with "
                       "OMP_WAIT_POLICY=PASSIVE")
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    return config, output


def repo_path(source: str) -> Path:
    """A path from a config: absolute, or relative to the repository root."""
    path = Path(source).expanduser()
    return (path if path.is_absolute() else REPO / path).resolve()
