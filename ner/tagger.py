"""The transformer tagger: a Hugging Face token-classification model as an entity recognizer.

The model directory (``config.json`` with IOB2 ``id2label`` over schema types, weights, fast
tokenizer) is what ``recipes/ner`` exports. Text is split into words by the tokenizer itself
(whitespace and punctuation for BERT), each word is labelled from its first sub-token, the word
labels are read as IOB2 the way conlleval does (:func:`eval.entities.spans_from_iob2`) and the
spans become :class:`~ner.types.Entity` with character offsets from the tokenizer's offset
mapping. Long texts are cut into overlapping windows (:mod:`ner.windows`).

The same tagger also loads the CTranslate2 export of :mod:`ner.export` (int8 encoder + linear
head), which is what the pipeline serves on CPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from eval.entities import spans_from_iob2
from ner.errors import TaggerModelError
from ner.export import EXPORT_FORMAT, MANIFEST
from ner.schema import EntityType, type_of_label
from ner.types import Entity
from ner.windows import Encoded, Window, encode_windows, pad_ids
from speech.errors import InvalidOptionError, ModelNotFoundError


@dataclass(frozen=True)
class TaggerOptions:
    """How the tagger runs a model."""

    device: str = "cpu"
    """``cpu``, ``cuda`` or ``cuda:N``."""
    batch_size: int = 32
    """Windows per forward pass."""
    max_length: int | None = None
    """Sub-tokens per window including special tokens; None: the model's limit (at most 512)."""
    stride: int = 32
    """Sub-tokens shared by consecutive windows of a long text."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidOptionError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.max_length is not None and self.max_length < 8:
            raise InvalidOptionError(f"max_length must be at least 8, not {self.max_length}")


@dataclass(frozen=True)
class WordLabel:
    """The label chosen for one word and its probability."""

    label: str
    probability: float


class TransformerTagger:
    """Tags text with a fine-tuned token-classification model (see the module docstring)."""

    def __init__(self, model_dir: str | Path, options: TaggerOptions | None = None) -> None:
        from transformers import AutoTokenizer

        self.options = options or TaggerOptions()
        self.device = _device(self.options.device)
        path = Path(model_dir).expanduser()
        manifest = path / MANIFEST
        if manifest.is_file():
            self.scorer: Scorer = CTranslate2Scorer(path, self.device)
            tokenizer_dir = path / "tokenizer"
        elif (path / "config.json").is_file():
            self.scorer = TorchScorer(path, self.device)
            tokenizer_dir = path
        else:
            raise ModelNotFoundError(str(model_dir), [f"{path}: no config.json or {MANIFEST}"],
                                     "Pass the directory the NER recipe exported (config.json, "
                                     "model.safetensors, tokenizer files) or its CTranslate2 "
                                     "export (python -m ner.export).")
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        if not self.tokenizer.is_fast:
            raise TaggerModelError(f"{path} has no fast tokenizer (tokenizer.json); the tagger "
                                   "needs its offset mapping")
        self.labels = _labels(self.scorer.id2label, path)
        limits = [self.options.max_length or 512, self.tokenizer.model_max_length,
                  self.scorer.max_positions]
        self.max_length = int(min(limits))
        self.stride = min(self.options.stride, self.max_length // 2)
        self.pad_id = self.tokenizer.pad_token_id or 0

    def tag(self, text: str) -> list[Entity]:
        """The entities of ``text``, in order of their start offset."""
        return self.tag_batch([text])[0]

    def tag_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The entities of each text (batched across texts)."""
        encoded = encode_windows(self.tokenizer, texts, max_length=self.max_length,
                                 stride=self.stride)
        words = self._decide(encoded, len(texts))
        return [_entities(text, labels, spans)
                for text, labels, spans in zip(texts, words, encoded.word_spans, strict=True)]

    def tag_words(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """IOB2 tags for pre-split sentences (one tag per word, as in a CoNLL file)."""
        encoded = encode_windows(self.tokenizer, sentences, max_length=self.max_length,
                                 stride=self.stride, is_split=True)
        decided = self._decide(encoded, len(sentences))
        return [[decided[i][w].label if w in decided[i] else "O" for w in range(len(words))]
                for i, words in enumerate(sentences)]

    def _decide(self, encoded: Encoded, count: int) -> list[dict[int, WordLabel]]:
        decided: list[dict[int, WordLabel]] = [{} for _ in range(count)]
        for batch in _batches(encoded.windows, self.options.batch_size):
            probabilities = self.scorer.probabilities(batch, self.pad_id)
            for row, window in enumerate(batch):
                for position, word in window.owned:
                    best = int(probabilities[row, position].argmax())
                    decided[window.sample][word] = WordLabel(
                        self.labels[best], float(probabilities[row, position, best]))
        return decided



class Scorer(Protocol):
    """Label probabilities (windows × positions × labels, on the CPU) for a batch of windows."""

    id2label: dict[int, str]
    max_positions: int

    def probabilities(self, batch: Sequence[Window], pad_id: int) -> torch.Tensor: ...


class TorchScorer:
    """The recipe's Hugging Face export, run by transformers (fp32)."""

    def __init__(self, path: Path, device: torch.device) -> None:
        from transformers import AutoModelForTokenClassification

        self.device = device
        self.model = AutoModelForTokenClassification.from_pretrained(path).to(device).eval()
        self.id2label = dict(self.model.config.id2label)
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 512))

    def probabilities(self, batch: Sequence[Window], pad_id: int) -> torch.Tensor:
        ids, mask = pad_ids(batch, pad_id)
        with torch.inference_mode():
            logits: torch.Tensor = self.model(input_ids=ids.to(self.device),
                                              attention_mask=mask.to(self.device)).logits
        return logits.float().softmax(dim=-1).cpu()


class CTranslate2Scorer:
    """The :mod:`ner.export` folder: CTranslate2 encoder (int8 on CPU) and a linear head."""

    def __init__(self, path: Path, device: torch.device) -> None:
        import ctranslate2
        from safetensors.torch import load_file

        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != EXPORT_FORMAT:
            raise TaggerModelError(f"{path / MANIFEST} is not a {EXPORT_FORMAT} export")
        self.id2label = dict(enumerate(manifest["labels"]))
        self.max_positions = int(manifest["max_position_embeddings"])
        self.device = device
        ct2_device = "cuda" if device.type == "cuda" else "cpu"
        self.encoder = ctranslate2.Encoder(str(path), device=ct2_device,
                                           device_index=device.index or 0,
                                           intra_threads=torch.get_num_threads())
        head = load_file(str(path / "classifier.safetensors"))
        self.weight = head["weight"].to(device)
        self.bias = head["bias"].to(device)

    def probabilities(self, batch: Sequence[Window], pad_id: int) -> torch.Tensor:
        output = self.encoder.forward_batch([list(w.input_ids) for w in batch])
        states = output.last_hidden_state
        # On the CPU a StorageView exposes the array interface; on CUDA the CUDA one.
        hidden = (torch.from_numpy(np.asarray(states)) if self.device.type == "cpu"
                  else torch.as_tensor(states, device=self.device)).float()
        logits = hidden @ self.weight.T + self.bias
        return logits.softmax(dim=-1).cpu()


def _batches(windows: Sequence[Window], size: int) -> Iterator[list[Window]]:
    # Similar lengths share a batch, so little of each forward pass is padding.
    ordered = sorted(windows, key=lambda w: len(w.input_ids))
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]


def _entities(text: str, words: dict[int, WordLabel],
              spans: dict[int, tuple[int, int]]) -> list[Entity]:
    order = sorted(spans)
    tags = [words[w].label if w in words else "O" for w in order]
    entities = []
    for span in spans_from_iob2(tags):
        start, end = spans[order[span.start]][0], spans[order[span.end - 1]][1]
        members = [words[w].probability for w in order[span.start:span.end] if w in words]
        entities.append(Entity(start=start, end=end, text=text[start:end],
                               type=EntityType(span.type), score=sum(members) / len(members),
                               source="model"))
    return entities


def _labels(id2label: dict[int, str], path: Path) -> tuple[str, ...]:
    labels = tuple(id2label[i] for i in range(len(id2label)))
    try:
        for label in labels:
            type_of_label(label)
    except ValueError as exc:
        raise TaggerModelError(f"{path} is not a medstream NER model: {exc}. Train one with "
                               "recipes/ner (its id2label uses the schema's types).") from None
    return labels


def _device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidOptionError(f"device {name!r} was asked for but CUDA is not available "
                                     "(no GPU, or a CPU-only torch); use device='cpu'")
        return torch.device(name)
    raise InvalidOptionError(f"unknown device {name!r}: use 'cpu', 'cuda' or 'cuda:N'")
