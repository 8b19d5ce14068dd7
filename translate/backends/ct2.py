"""The default MT backend: a CTranslate2 ``Translator`` (int8 on CPU, float16 on GPU).

The longest sequence the model reads is read from the model itself: the rows of its position
table in ``model.bin`` (CTranslate2 keeps no copy of the transformers ``config.json``, and its
Python API does not expose the table), and the tokenizer's ``model_max_length`` when it states a
sane one; the smaller wins.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from translate.annotation import read_annotation
from translate.backends.base import (
    DecodeRequest,
    DecodeSettings,
    Hypothesis,
    MTBackend,
    smallest_limit,
    tokenizer_limit,
)
from translate.tokenization import ModelTokenizer


class CTranslate2Backend(MTBackend):
    """A CTranslate2 model directory holding the tokenizer files as well."""

    def __init__(self, path: Path, identifier: str, device: str = "cpu",
                 compute_type: str = "auto", threads: int = 0) -> None:
        import ctranslate2

        if compute_type == "auto":
            compute_type = "int8_float16" if device == "cuda" else "int8"
        self.translator = ctranslate2.Translator(str(path), device=device,
                                                 compute_type=compute_type,
                                                 intra_threads=threads)
        self.tokenizer = ModelTokenizer.from_directory(path)
        self.annotation = read_annotation(path, self.tokenizer.tokenizer.get_vocab)
        self.max_source_tokens = smallest_limit(position_limit(path / "model.bin"),
                                                tokenizer_limit(self.tokenizer.tokenizer))
        self.identifier = f"{identifier} [{device}, {compute_type}]"

    def generate(self, requests: Sequence[DecodeRequest],
                 settings: DecodeSettings) -> list[list[Hypothesis]]:
        if not requests:
            return []
        prefixes = [list(r.target_prefix) or None for r in requests]
        results = self.translator.translate_batch(
            [list(r.source) for r in requests],
            target_prefix=prefixes if any(prefixes) else None,
            max_batch_size=settings.batch_size,
            beam_size=max(settings.beam_size, settings.num_hypotheses),
            num_hypotheses=settings.num_hypotheses,
            length_penalty=settings.length_penalty,
            max_decoding_length=self._decoding_length(requests, settings),
            return_scores=True,
            return_attention=settings.attention,
        )
        return [_hypotheses(result, settings.attention) for result in results]

    def _decoding_length(self, requests: Sequence[DecodeRequest],
                         settings: DecodeSettings) -> int:
        # A forced prefix counts towards the decoding length: leave room after it, within
        # what the model's position embeddings allow.
        wanted = settings.max_length + max(len(r.target_prefix) for r in requests)
        return min(wanted, self.max_source_tokens) if self.max_source_tokens else wanted


def _hypotheses(result: Any, attention: bool) -> list[Hypothesis]:
    found = []
    for index, tokens in enumerate(result.hypotheses):
        weights = None
        if attention and result.attention:
            weights = tuple(tuple(row) for row in result.attention[index])
        found.append(Hypothesis(tuple(tokens), float(result.scores[index]), weights))
    return found


SUPPORTED_BINARY_VERSIONS = frozenset({5, 6})
"""``model.bin`` layouts :func:`position_limit` reads (CTranslate2 3.x and 4.x write 6)."""


def position_limit(model_file: Path) -> int | None:
    """The rows of the smallest position table (``…/position_encodings/encodings``) of a
    CTranslate2 ``model.bin``: the longest sequence the model can read. None when the model
    has no such table (positions computed on the fly) or the file is not a layout known here.

    Only the variable headers are read; their values are skipped.
    """
    try:
        with model_file.open("rb") as handle:
            if _unpack(handle, "<I") not in SUPPORTED_BINARY_VERSIONS:
                return None
            _string(handle)
            _unpack(handle, "<I")
            rows: list[int] = []
            for _ in range(_unpack(handle, "<I")):
                name = _string(handle)
                shape = [_unpack(handle, "<I") for _ in range(_unpack(handle, "<B"))]
                _unpack(handle, "<B")
                handle.seek(_unpack(handle, "<I"), 1)
                if name.endswith("position_encodings/encodings") and len(shape) == 2:
                    rows.append(shape[0])
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return min(rows) if rows else None


def _unpack(handle: BinaryIO, layout: str) -> int:
    size = struct.calcsize(layout)
    data = handle.read(size)
    if len(data) != size:
        raise struct.error("model.bin ends early")
    return int(struct.unpack(layout, data)[0])


def _string(handle: BinaryIO) -> str:
    """A length-prefixed, NUL-terminated string."""
    length = _unpack(handle, "<H")
    data = handle.read(length)
    if len(data) != length:
        raise struct.error("model.bin ends early")
    return data[:-1].decode("utf-8")
