"""The transformer tagger: a Hugging Face token-classification model as an entity recognizer.

The model directory (``config.json`` with IOB2 ``id2label`` over schema types, weights, fast
tokenizer) is what ``recipes/ner`` exports. Raw text is tagged sentence by sentence
(:mod:`ner.sentences`: the model was trained on sentences, and a whole abstract in one piece
costs it 5 points of F1), each sentence split into words by the tokenizer itself (whitespace
and punctuation for BERT), each word gets a label distribution from its first sub-token, the
best valid IOB2 sequence over those is decoded (:mod:`ner.decoding`), and its spans become
:class:`~ner.types.Entity` with character offsets from the tokenizer's offset mapping. A
sentence longer than a window is cut into overlapping windows (:mod:`ner.windows`).

**Whole words.** BERT's words split "ataxia-telangiectasia" into "ataxia", "-" and
"telangiectasia". On raw text, an entity may not start on a word glued to the one before it
(no space between them, and the one before is not an opening bracket or quote): decoding
forbids ``B-`` there, so "telangiectasia" can only continue "ataxia-" or stay outside. A
trailing "-" or "/" is dropped from a span, and a span that then ends inside a hyphenated word
("red" of "red-blood-cell") is dropped. NCBI-disease does mark a few such spans (39 of 5,932
in train and devel: "malaria" of "malaria-causing"), but on the half of its devel split used
to choose settings, 11 of the tagger's 12 spans ending before a hyphen were wrong
("tumor" of "tumor-suppressor").

A model with one head per training corpus (:mod:`ner.heads`) is read through its view, or
through one named head.

The same tagger also loads the CTranslate2 export of :mod:`ner.export` (int8 encoder + linear
head), which is what the pipeline serves on CPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ner.decoding import NEVER, iob2_constraints, viterbi
from ner.errors import TaggerModelError
from ner.export import EXPORT_FORMAT, MANIFEST
from ner.heads import CONFIG_KEY, Heads
from ner.iob import Span, iob2_from_spans, spans_from_iob2
from ner.schema import EntityType, type_of_label
from ner.sentences import sentence_spans
from ner.spans import non_overlapping
from ner.types import Entity
from ner.windows import Encoded, Window, encode_windows, pad_ids
from speech.errors import InvalidOptionError, ModelNotFoundError

TRAINING_WINDOW = 128
"""Sub-tokens per window that ``recipes/ner`` trains with (its ``max_length``)."""
CONNECTORS = frozenset("-/")
"""Words that never end an entity: an entity ends before a hyphen or slash, never on one."""
OPENERS = frozenset("([{\"'\u201c\u2018")
"""Words after which an entity may start though no space separates them ("(G6PD)")."""


@dataclass(frozen=True)
class TaggerOptions:
    """How the tagger runs a model."""

    device: str = "cpu"
    """``cpu``, ``cuda`` or ``cuda:N``."""
    batch_size: int = 32
    """Windows per forward pass."""
    max_length: int | None = TRAINING_WINDOW
    """Sub-tokens per window including special tokens (default: the recipe's training window,
    so the model sees the context lengths it learnt on); None: the model's limit (at most
    512)."""
    stride: int = 32
    """Sub-tokens shared by consecutive windows of a long text."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidOptionError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.max_length is not None and self.max_length < 8:
            raise InvalidOptionError(f"max_length must be at least 8, not {self.max_length}")


@dataclass(frozen=True)
class WordSpan:
    """An entity over words ``start`` to ``end`` (exclusive) of a text's word order."""

    start: int
    end: int
    type: EntityType
    score: float
    """Mean probability of the entity's word labels."""


@dataclass(frozen=True)
class _Head:
    """One head ready to decode: its label indices, names and IOB2 constraints."""

    ids: list[int]
    labels: tuple[str, ...]
    start: np.ndarray
    transition: np.ndarray
    begins: list[int]
    """Positions of the ``B-`` labels in ``labels``."""


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
        try:
            self.heads = Heads.from_json(self.scorer.heads_data, self.labels)
        except (KeyError, TypeError, ValueError) as exc:
            raise TaggerModelError(f"{path}: its heads ({CONFIG_KEY}) do not fit its labels: "
                                   f"{exc}") from None
        self._decoders = {name: _head(self.heads.labels_of(name, self.labels), list(ids))
                          for name, ids in self.heads.groups.items()}
        limits = [self.options.max_length or 512, self.tokenizer.model_max_length,
                  self.scorer.max_positions]
        self.max_length = int(min(limits))
        self.stride = min(self.options.stride, self.max_length // 2)
        self.pad_id = self.tokenizer.pad_token_id or 0

    def tag(self, text: str, head: str | None = None) -> list[Entity]:
        """The entities of ``text``, in order of their start offset."""
        return self.tag_batch([text], head)[0]

    def tag_batch(self, texts: Sequence[str], head: str | None = None) -> list[list[Entity]]:
        """The entities of each text (its sentences batched across texts), read through the
        model's view or, given ``head``, through that head only. A text gives the same
        entities as its sentences (:func:`ner.sentences.sentence_spans`) tagged one by one."""
        pieces = [(index, start, end) for index, text in enumerate(texts)
                  for start, end in sentence_spans(text)]
        sentences = [texts[index][start:end] for index, start, end in pieces]
        encoded = encode_windows(self.tokenizer, sentences, max_length=self.max_length,
                                 stride=self.stride)
        words = self._word_logits(encoded, len(sentences))
        result: list[list[Entity]] = [[] for _ in texts]
        for (index, offset, _), sentence, logits, spans in zip(
                pieces, sentences, words, encoded.word_spans, strict=True):
            order = sorted(spans)
            inside = glued_words(sentence, [spans[w] for w in order])
            found = self.decode(logits, order, head, inside)
            result[index].extend(_entity(texts[index], offset, spans, order, s)
                                 for s in whole_word_spans(sentence, spans, order, found,
                                                           inside))
        return result

    def tag_words(self, sentences: Sequence[Sequence[str]],
                  head: str | None = None) -> list[list[str]]:
        """IOB2 tags for pre-split sentences (one tag per word, as in a CoNLL file)."""
        encoded = encode_windows(self.tokenizer, sentences, max_length=self.max_length,
                                 stride=self.stride, is_split=True)
        words = self._word_logits(encoded, len(sentences))
        result = []
        for logits, sentence in zip(words, sentences, strict=True):
            found = self.decode(logits, list(range(len(sentence))), head)
            result.append(iob2_from_spans(len(sentence), (Span(s.start, s.end, s.type.value)
                                                          for s in found)))
        return result

    def decode(self, logits: dict[int, np.ndarray], order: Sequence[int],
               head: str | None = None,
               inside: frozenset[int] = frozenset()) -> list[WordSpan]:
        """Entities over the words ``order`` (word indices; a word without logits is ``O``)
        from their label logits: through ``head``, or through the view, whose heads' spans are
        kept by type (schema order: a condition before anatomy), then longest first, where
        they overlap. No entity starts at a position (index into ``order``) in ``inside``
        (:func:`glued_words`). Raises InvalidOptionError for an unknown head."""
        if head is not None and head not in self.heads.groups:
            raise InvalidOptionError(f"the model has no head {head!r} "
                                     f"(it has {', '.join(self.heads.groups)})")
        names = [head] if head is not None else [n for n in self.heads.groups
                                                 if self.heads.types_viewed_from(n)]
        found: list[WordSpan] = []
        for name in names:
            keep = None if head is not None else self.heads.types_viewed_from(name)
            found.extend(s for s in _decode_head(self._decoders[name], logits, order, inside)
                         if keep is None or s.type in keep)
        return _without_overlaps(found) if len(names) > 1 else found

    def _word_logits(self, encoded: Encoded, count: int) -> list[dict[int, np.ndarray]]:
        words: list[dict[int, np.ndarray]] = [{} for _ in range(count)]
        for batch in _batches(encoded.windows, self.options.batch_size):
            logits = self.scorer.logits(batch, self.pad_id).numpy()
            for row, window in enumerate(batch):
                for position, word in window.owned:
                    words[window.sample][word] = logits[row, position]
        return words



class Scorer(Protocol):
    """Label logits (windows × positions × labels, float32 on the CPU) for a batch of windows."""

    id2label: dict[int, str]
    max_positions: int
    heads_data: dict[str, Any] | None
    """The model's heads as stored (:meth:`ner.heads.Heads.to_json`), None without heads."""

    def logits(self, batch: Sequence[Window], pad_id: int) -> torch.Tensor: ...


class TorchScorer:
    """The recipe's Hugging Face export, run by transformers (fp32)."""

    def __init__(self, path: Path, device: torch.device) -> None:
        from transformers import AutoModelForTokenClassification

        self.device = device
        self.model = AutoModelForTokenClassification.from_pretrained(path).to(device).eval()
        self.id2label = dict(self.model.config.id2label)
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 512))
        self.heads_data = getattr(self.model.config, CONFIG_KEY, None)

    def logits(self, batch: Sequence[Window], pad_id: int) -> torch.Tensor:
        ids, mask = pad_ids(batch, pad_id)
        with torch.inference_mode():
            logits: torch.Tensor = self.model(input_ids=ids.to(self.device),
                                              attention_mask=mask.to(self.device)).logits
        return logits.float().cpu()


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
        self.heads_data = manifest.get("heads")
        self.device = device
        ct2_device = "cuda" if device.type == "cuda" else "cpu"
        self.encoder = ctranslate2.Encoder(str(path), device=ct2_device,
                                           device_index=device.index or 0,
                                           intra_threads=torch.get_num_threads())
        head = load_file(str(path / "classifier.safetensors"))
        self.weight = head["weight"].to(device)
        self.bias = head["bias"].to(device)

    def logits(self, batch: Sequence[Window], pad_id: int) -> torch.Tensor:
        output = self.encoder.forward_batch([list(w.input_ids) for w in batch])
        states = output.last_hidden_state
        # On the CPU a StorageView exposes the array interface; on CUDA the CUDA one.
        hidden = (torch.from_numpy(np.asarray(states)) if self.device.type == "cpu"
                  else torch.as_tensor(states, device=self.device)).float()
        logits = hidden @ self.weight.T + self.bias
        return logits.cpu()


def _batches(windows: Sequence[Window], size: int) -> Iterator[list[Window]]:
    # Similar lengths share a batch, so little of each forward pass is padding.
    ordered = sorted(windows, key=lambda w: len(w.input_ids))
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]


def _head(labels: tuple[str, ...], ids: list[int]) -> _Head:
    start, transition = iob2_constraints(labels)
    return _Head(ids, labels, start, transition,
                 [i for i, label in enumerate(labels) if label.startswith("B-")])


def _decode_head(head: _Head, logits: dict[int, np.ndarray], order: Sequence[int],
                 inside: frozenset[int] = frozenset()) -> list[WordSpan]:
    if not order:
        return []
    certain_o = np.full(len(head.ids), -np.inf)
    certain_o[0] = 0.0  # a word without a sub-token of its own (never decided) is O
    rows = [logits[w][head.ids] if w in logits else certain_o for w in order]
    log_probs = torch.from_numpy(np.stack(rows)).log_softmax(dim=-1).numpy()
    scores = np.maximum(log_probs, -1e4)
    if inside:
        scores[np.ix_(sorted(inside), head.begins)] = NEVER
    path = viterbi(scores, head.start, head.transition)
    found = []
    for span in spans_from_iob2([head.labels[i] for i in path]):
        members = [float(np.exp(log_probs[k, path[k]])) for k in range(span.start, span.end)]
        found.append(WordSpan(span.start, span.end, EntityType(span.type),
                              sum(members) / len(members)))
    return found


def _without_overlaps(spans: Sequence[WordSpan]) -> list[WordSpan]:
    # Types in schema order first: AnatEM marks tumours and cancers as (pathological) anatomy,
    # so its "breast cancer" must yield to BC5CDR's condition; then longest, then most probable.
    rank = {kind: i for i, kind in enumerate(EntityType)}
    return non_overlapping(spans, lambda s: (s.start, s.end),
                           lambda s: (rank[s.type], s.start - s.end, -s.score, s.start))


def glued_words(text: str, bounds: Sequence[tuple[int, int]]) -> frozenset[int]:
    """Positions of the words (character ``bounds`` in ``text``, in order) that continue the
    word before them: no space between the two, and the one before is not an opening bracket
    or quote. An entity never starts there (module docstring)."""
    return frozenset(k for k in range(1, len(bounds))
                     if bounds[k][0] == bounds[k - 1][1]
                     and text[bounds[k - 1][0]:bounds[k - 1][1]] not in OPENERS)


def whole_word_spans(text: str, spans: dict[int, tuple[int, int]], order: Sequence[int],
                     found: Sequence[WordSpan], inside: frozenset[int]) -> list[WordSpan]:
    """``found`` without trailing hyphens and slashes (an entity never ends on a connector);
    a span that then ends inside a hyphenated or slashed word (a connector glued to both
    sides follows it) is dropped, and so is a span of connectors only. ``inside``:
    :func:`glued_words` of the positions of ``order``."""
    result = []
    for span in found:
        end = span.end
        while end > span.start and _word(text, spans, order, end - 1) in CONNECTORS:
            end -= 1
        cut = (end in inside and end + 1 in inside
               and _word(text, spans, order, end) in CONNECTORS)
        if end > span.start and not cut:
            result.append(span if end == span.end else replace(span, end=end))
    return result


def _word(text: str, spans: dict[int, tuple[int, int]], order: Sequence[int],
          position: int) -> str:
    start, end = spans[order[position]]
    return text[start:end]


def _entity(text: str, offset: int, spans: dict[int, tuple[int, int]], order: Sequence[int],
            found: WordSpan) -> Entity:
    start = offset + spans[order[found.start]][0]
    end = offset + spans[order[found.end - 1]][1]
    return Entity(start=start, end=end, text=text[start:end], type=found.type,
                  score=found.score, source="model")


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
