"""The transformer tagger: a Hugging Face token-classification model as an entity recognizer.

The model directory (``config.json`` with IOB2 ``id2label`` over schema types, weights, fast
tokenizer) is what ``recipes/ner`` exports. Raw text is tagged sentence by sentence
(:mod:`ner.sentences`: the model was trained on sentences, and a whole abstract in one piece
costs it 5 points of F1), each sentence split into words by the tokenizer itself (whitespace
and punctuation for BERT), each word gets a label distribution from its first sub-token, the
best valid IOB2 sequence over those is decoded (:mod:`ner.decoding`), and its spans become
:class:`~ner.types.Entity` with character offsets from the tokenizer's offset mapping. A
sentence longer than a window is cut into overlapping windows (:mod:`ner.windows`).

**Whole words, as the corpora mark them.** BERT's words split "ataxia-telangiectasia" into
"ataxia", "-" and "telangiectasia". On raw text an entity may not start on a word glued to the
one before it (:class:`RawWords`): decoding forbids ``B-`` there, so "telangiectasia" can only
continue "ataxia-" or stay outside; after an opening bracket ("(G6PD)") or a slash
("ephedrine/propofol") an entity may start. A trailing "-" or "/" is dropped from a span. The
corpora differ on entities that end inside a hyphenated word: BC5CDR marks "cocaine" in
"cocaine-induced", NCBI-disease hardly ever marks "red" in "red-blood-cell", so the NCBI-disease
head's spans that end there are dropped (:data:`ENDS_BEFORE_HYPHEN`).

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
CLOSERS = frozenset(")]}\"'\u201d\u2019")
"""Punctuation an entity may end with ("glucose-6-phosphate dehydrogenase (G6PD)")."""
FUNCTION_WORDS = frozenset({
    "an", "the", "and", "or", "nor", "but", "of", "in", "on", "at", "to", "for", "with",
    "by", "from", "into", "as", "my", "your", "his", "her", "its", "our", "their", "this",
    "that", "these", "those", "you", "he", "she", "it", "we", "they", "me", "him", "us",
    "them", "is", "are", "was", "were", "be", "been", "not", "n't", "na", "um", "uh", "so",
})
"""English words no entity ends with (nor consists of): in conversation the tagger marked
"na" of "gon na" as a medication and "your" as anatomy; "rash on", "tired and". Matched in
lower case only ("vitamin A", "type I" keep their letter; so does "hepatitis a", hence no "a"
and no "i" here)."""
ENDS_BEFORE_HYPHEN = frozenset({"bc5cdr", "anatem"})
"""Heads whose corpus marks entities that end inside a hyphenated word: "cocaine" of
"cocaine-induced" (7.2 % of BC5CDR's train entities end before a hyphen, 2.8 % of AnatEM's).
NCBI-disease does so for 1.4 % ("malaria" of "malaria-causing"), but 11 of its head's 12 such
spans on the half of its devel split used to choose settings were wrong ("tumor" of
"tumor-suppressor"), so its head's spans must end at a word's end."""
STARTS_AFTER_HYPHEN = frozenset({"bc5cdr", "anatem"})
"""Heads whose corpus marks entities that start inside a hyphenated word: "colistin" of
"kanamycin-colistin" (1.2 % of BC5CDR's and 1.5 % of AnatEM's train entities start after a
hyphen or slash; allowing it was worth +0.2 F1 on the choosing half of each devel split)."""
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
    sentences: bool = True
    """Tag raw text sentence by sentence (:mod:`ner.sentences`); False: each text in one
    piece, cut only into windows (what the tagger did before; 5 points of F1 lower on
    NCBI-disease abstracts, kept for comparison)."""

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
                  for start, end in (sentence_spans(text) if self.options.sentences
                                     else [(0, len(text))] if text.strip() else [])]
        sentences = [texts[index][start:end] for index, start, end in pieces]
        encoded = encode_windows(self.tokenizer, sentences, max_length=self.max_length,
                                 stride=self.stride)
        words = self._word_logits(encoded, len(sentences))
        result: list[list[Entity]] = [[] for _ in texts]
        for (index, offset, _), sentence, logits, spans in zip(
                pieces, sentences, words, encoded.word_spans, strict=True):
            order = sorted(spans)
            raw = RawWords.of(sentence, [spans[w] for w in order])
            result[index].extend(_entity(texts[index], offset, spans, order, s)
                                 for s in self.decode(logits, order, head, raw))
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
               head: str | None = None, raw: RawWords | None = None) -> list[WordSpan]:
        """Entities over the words ``order`` (word indices; a word without logits is ``O``)
        from their label logits: through ``head``, or through the view, whose heads' spans are
        kept by type (schema order: a condition before anatomy), then longest first, where
        they overlap. Given the ``raw`` words of a text, entities are whole words as each
        head's corpus marks them (:func:`whole_word_spans`). Raises InvalidOptionError for an
        unknown head."""
        if head is not None and head not in self.heads.groups:
            raise InvalidOptionError(f"the model has no head {head!r} "
                                     f"(it has {', '.join(self.heads.groups)})")
        names = [head] if head is not None else [n for n in self.heads.groups
                                                 if self.heads.types_viewed_from(n)]
        found: list[WordSpan] = []
        for name in names:
            keep = None if head is not None else self.heads.types_viewed_from(name)
            inside = frozenset() if raw is None else raw.starts_forbidden(
                name in STARTS_AFTER_HYPHEN)
            decoded = _decode_head(self._decoders[name], logits, order, inside)
            if raw is not None:
                decoded = whole_word_spans(raw, decoded, name in ENDS_BEFORE_HYPHEN)
            found.extend(s for s in decoded if keep is None or s.type in keep)
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


@dataclass(frozen=True)
class RawWords:
    """The words of a raw sentence, in order, and which of them continue the word before."""

    words: tuple[str, ...]
    inside: frozenset[int]
    """Positions of the words glued to the one before them (:meth:`of`): no entity starts
    there."""

    def starts_forbidden(self, after_hyphen_allowed: bool) -> frozenset[int]:
        """Where no entity may start: :attr:`inside`, less the words right after a hyphen
        when ``after_hyphen_allowed`` (the corpus marks "colistin" in "kanamycin-colistin")."""
        if not after_hyphen_allowed:
            return self.inside
        return frozenset(k for k in self.inside if self.words[k - 1] != "-")

    @classmethod
    def of(cls, text: str, bounds: Sequence[tuple[int, int]]) -> RawWords:
        """The words at character ``bounds`` of ``text``. A word is inside a word when no
        space separates it from the one before and that one is neither an opening bracket or
        quote ("(G6PD)") nor a slash ("ephedrine/propofol": two entities in every corpus)."""
        words = tuple(text[start:end] for start, end in bounds)
        return cls(words, frozenset(
            k for k in range(1, len(bounds))
            if bounds[k][0] == bounds[k - 1][1] and words[k - 1] not in OPENERS | {"/"}))


def whole_word_spans(raw: RawWords, found: Sequence[WordSpan],
                     ends_before_hyphen: bool) -> list[WordSpan]:
    """``found`` without trailing connectors, punctuation and function words (an entity never
    ends on "-", "," or "and": "rash on" becomes "rash", "gon na" gives no medication "na");
    unless ``ends_before_hyphen`` (the head's corpus marks "cocaine" in "cocaine-induced"), a
    span that then ends inside a hyphenated word is dropped. A span left empty is dropped."""
    result = []
    for span in found:
        end = span.end
        while end > span.start and _trailing_junk(raw.words[end - 1]):
            end -= 1
        cut = (not ends_before_hyphen and end in raw.inside and end + 1 in raw.inside
               and raw.words[end] == "-")
        if end > span.start and not cut:
            result.append(span if end == span.end else replace(span, end=end))
    return result


def _trailing_junk(word: str) -> bool:
    """Whether an entity may not end with ``word``: a connector, punctuation other than a
    closing bracket or quote, or a function word."""
    if word in FUNCTION_WORDS or word in CONNECTORS:
        return True
    return not any(c.isalnum() for c in word) and word not in CLOSERS


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
