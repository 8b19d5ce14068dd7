"""Texts (or pre-split word lists) as model-sized windows of sub-tokens, with word ownership.

A token classifier decides per word from the word's first sub-token. Long inputs are cut into
windows of at most ``max_length`` sub-tokens that overlap by ``stride``; a word whose first
sub-token falls into several windows is decided by exactly one of them, the one where that
sub-token has the most context on both sides. Training labels and inference read the same
owner positions, so the two never disagree about which sub-token speaks for a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Window:
    """One model input: sub-token ids with special tokens, and the words it decides."""

    sample: int
    """Index of the text (or word list) it comes from."""
    input_ids: tuple[int, ...]
    owned: tuple[tuple[int, int], ...]
    """(position in ``input_ids``, word index) for each word this window decides."""


@dataclass(frozen=True)
class Encoded:
    """All windows of a batch of inputs, and each word's character span per input."""

    windows: tuple[Window, ...]
    word_spans: tuple[dict[int, tuple[int, int]], ...]
    """Per input, word index → (start, end) characters. For pre-split input the offsets are
    relative to each word, so only raw-text spans are meaningful."""


def encode_windows(tokenizer: Any, inputs: Sequence[str] | Sequence[Sequence[str]], *,
                   max_length: int, stride: int, is_split: bool = False) -> Encoded:
    """Tokenize ``inputs`` into overlapping windows (see the module docstring).

    ``tokenizer`` is a fast Hugging Face tokenizer; with ``is_split`` the inputs are lists of
    words (as in a CoNLL file), otherwise raw texts that the tokenizer splits into words itself.
    Windows hold at most ``max_length`` sub-tokens including the special tokens.
    """
    if not inputs:
        return Encoded((), ())
    encoding = tokenizer(list(inputs) if not is_split else [list(words) for words in inputs],
                         is_split_into_words=is_split, truncation=True, max_length=max_length,
                         stride=stride, return_overflowing_tokens=True,
                         return_offsets_mapping=True)
    samples: list[int] = encoding["overflow_to_sample_mapping"]
    # (sample, word) -> (offset of the sub-token, -context, window, position): the smallest
    # offset is the word's first sub-token; among windows holding it, the most context wins.
    best: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    spans: list[dict[int, tuple[int, int]]] = [{} for _ in inputs]
    for window, sample in enumerate(samples):
        word_ids = encoding.word_ids(window)
        content = [p for p, w in enumerate(word_ids) if w is not None]
        if not content:
            continue
        first, last = content[0], content[-1]
        for position in content:
            word = word_ids[position]
            start, end = encoding["offset_mapping"][window][position]
            old = spans[sample].get(word)
            spans[sample][word] = (start, end) if old is None else (min(old[0], start),
                                                                      max(old[1], end))
            context = min(position - first, last - position)
            key = (start, -context, window, position)
            if (sample, word) not in best or key < best[(sample, word)]:
                best[(sample, word)] = key
    owned: list[list[tuple[int, int]]] = [[] for _ in samples]
    for (_, word), (_, _, window, position) in best.items():
        owned[window].append((position, word))
    windows = tuple(Window(sample, tuple(encoding["input_ids"][index]), tuple(sorted(mine)))
                    for index, (sample, mine) in enumerate(zip(samples, owned, strict=True)))
    return Encoded(windows, tuple(spans))


def pad_ids(windows: Sequence[Window], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` of ``windows`` padded to the longest one."""
    width = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for row, window in enumerate(windows):
        ids[row, :len(window.input_ids)] = torch.tensor(window.input_ids, dtype=torch.long)
        mask[row, :len(window.input_ids)] = 1
    return ids, mask
