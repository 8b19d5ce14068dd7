"""The default MT backend: a CTranslate2 ``Translator`` (int8 on CPU, float16 on GPU)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from translate.annotation import read_annotation
from translate.backends.base import DecodeRequest, DecodeSettings, Hypothesis, MTBackend
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
        limit = int(getattr(self.tokenizer.tokenizer, "model_max_length", 0) or 0)
        self.max_positions = limit if 0 < limit < 100_000 else None
        """The model's longest sequence (position embeddings), when the tokenizer says."""
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
        return min(wanted, self.max_positions) if self.max_positions else wanted


def _hypotheses(result: Any, attention: bool) -> list[Hypothesis]:
    found = []
    for index, tokens in enumerate(result.hypotheses):
        weights = None
        if attention and result.attention:
            weights = tuple(tuple(row) for row in result.attention[index])
        found.append(Hypothesis(tuple(tokens), float(result.scores[index]), weights))
    return found
