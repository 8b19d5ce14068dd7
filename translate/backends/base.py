"""The interface every MT backend implements: beam search over token strings, with an optional
forced target prefix, n-best lists and source–target attention."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from translate.annotation import TermAnnotation
from translate.tokenization import ModelTokenizer


@dataclass(frozen=True)
class DecodeRequest:
    """One sentence to decode: source tokens and the target tokens the output must begin with
    (the language token, then any forced prefix)."""

    source: tuple[str, ...]
    target_prefix: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hypothesis:
    """One output: its tokens (prefix included, end token excluded), score, attention."""

    tokens: tuple[str, ...]
    score: float
    """Log-probability, normalised by length as the backend's length penalty says."""
    attention: tuple[tuple[float, ...], ...] | None = None
    """``attention[j][i]``: how much output token ``j`` attends to source token ``i``."""


@dataclass(frozen=True)
class DecodeSettings:
    beam_size: int = 4
    num_hypotheses: int = 1
    max_length: int = 256
    length_penalty: float = 1.0
    attention: bool = False
    batch_size: int = 16


class MTBackend(ABC):
    """A translation model on a device, with its tokenizer."""

    identifier: str
    """The model as reported (name or path and weights checksum, device, compute type)."""
    tokenizer: ModelTokenizer
    annotation: TermAnnotation | None = None
    """How the model reads inline term annotations, when it was trained to."""
    max_source_tokens: int | None = None
    """The most source tokens (special tokens included) the model reads, as the model itself
    says (its position embeddings, its tokenizer's stated maximum); None when unknown. The
    :class:`~translate.translator.Translator` cuts longer texts into pieces that fit."""

    @abstractmethod
    def generate(self, requests: Sequence[DecodeRequest],
                 settings: DecodeSettings) -> list[list[Hypothesis]]:
        """The ``settings.num_hypotheses`` best outputs of each request, best first."""


def tokenizer_limit(tokenizer: Any) -> int | None:
    """The tokenizer's ``model_max_length`` when it states one (transformers puts a huge
    number there when the tokenizer files say nothing)."""
    limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
    return limit if 0 < limit < 100_000 else None


def smallest_limit(*limits: int | None) -> int | None:
    """The smallest of the limits that are known."""
    known = [limit for limit in limits if limit is not None and limit > 0]
    return min(known) if known else None
