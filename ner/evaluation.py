"""Tag a CoNLL corpus split with the tagger, ready to score against its gold tags.

Predictions of a type the corpus does not annotate are turned into ``O`` before scoring: an
organ found in an NCBI-disease sentence is not an error, that corpus just never marks organs.
A model with a head for the corpus (:mod:`ner.heads`) is read through that head, which learnt
the corpus' annotation guidelines; otherwise through the model's view, as the pipeline reads it.
Each split is tagged as written and in its spoken style (lower case, no punctuation), the way
live transcripts look, and, for a model with several heads, as written through the view
(``pipeline_view``).

Abbreviations are resolved as the pipeline resolves them in a document
(:mod:`ner.abbreviations`): the split is read in order, as the corpus files keep their
documents, and a definition is remembered for the :data:`DOCUMENT_WINDOW` sentences after it.
The ``isolated`` variant scores the same tags with each sentence read alone (definitions apply
only within their sentence).

**Raw text** (:func:`tag_raw_split`) is the headline: each document of
:func:`ner.raw_corpora.raw_split` (the originals where the corpus has them, else its detokenized
CoNLL sentences) is handed over as text, the way ``medstream ner`` gets it, and scored by
exact character spans. ``raw`` reads it through the corpus' head (as ``original`` does the
CoNLL tokens); ``raw_pipeline`` runs the recognizer the pipeline runs (the view, the built-in
lexicon and the rules).

**Parts.** A split can be scored on ``all`` of it or on one half (:data:`ner.raw_corpora.PARTS`):
``choose``, the first half of its documents, where settings are compared, and ``report``, the
second, kept for the figures that are published. A CoNLL split is cut where its raw documents
are (:func:`conll_part`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from ner.abbreviations import AbbreviationMemory
from ner.conll import TaggedSentence
from ner.corpora import CorpusSentence, asr_style, load_split
from ner.iob import Span, iob2_from_spans, spans_from_iob2
from ner.lexicon import builtin_lexicon
from ner.raw_corpora import Part, RawDocument, document_part, raw_split, sentence_documents
from ner.recognizer import EntityRecognizer, LexiconRecognizer, TaggerRecognizer
from ner.schema import EntityType, annotated_types
from ner.tagger import TransformerTagger
from ner.types import Entity

VARIANTS = ("original", "isolated", "asr_style", "pipeline_view")
VARIANT_LABELS = {"original": "", "isolated": " (sentences alone)",
                  "asr_style": " (spoken style)", "pipeline_view": " (pipeline view)"}
"""How reports name each variant after the corpus name."""
DOCUMENT_WINDOW = 10
"""Sentences after its own that an abbreviation definition is remembered for: about one
document. The files do not mark where a document ends; NCBI-disease and BC5CDR devel average
9.2 sentences per abstract."""


@dataclass(frozen=True)
class TaggedSplit:
    """Gold and predicted sentences (same tokens) of one corpus split in one variant."""

    corpus: str
    variant: str
    gold: tuple[TaggedSentence, ...]
    predicted: tuple[TaggedSentence, ...]


def tag_split(tagger: TransformerTagger, root: str | Path, corpus: str, split: str = "devel",
              limit: int | None = None,
              variants: Sequence[str] | None = None, part: Part = "all") -> list[TaggedSplit]:
    """``corpus``'s ``split`` under ``root`` tagged in ``variants`` (default: all of
    :data:`VARIANTS` that apply to the model; ``pipeline_view`` only to one with heads), on
    the sentences of ``part`` (:func:`conll_part`). Raises KeyError for an unknown variant."""
    if variants is None:
        variants = VARIANTS if len(tagger.heads.groups) > 1 else VARIANTS[:3]
    own_head = corpus if corpus in tagger.heads.groups else None
    sentences = conll_part(root, corpus, split, part)[:limit]
    annotated = {t.value for t in sentences[0].annotated} if sentences else set()
    texts = {
        "original": lambda: [s.sentence for s in sentences],
        "asr_style": lambda: [v for s in sentences if (v := asr_style(s.sentence)) is not None],
    }
    tagged: dict[tuple[str, str | None], list[list[str]]] = {}
    result = []
    for variant in variants:
        if variant not in VARIANTS:
            raise KeyError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
        text = "asr_style" if variant == "asr_style" else "original"
        gold = texts[text]()
        head = None if variant == "pipeline_view" else own_head
        if (text, head) not in tagged:  # "isolated" scores the tags of "original" again
            tagged[text, head] = tagger.tag_words([s.tokens for s in gold], head)
        tags = resolve_abbreviations([s.tokens for s in gold], tagged[text, head],
                                     0 if variant == "isolated" else DOCUMENT_WINDOW)
        predicted = tuple(
            TaggedSentence(s.tokens, tuple(t if t.partition("-")[2] in annotated else "O"
                                           for t in sentence_tags))
            for s, sentence_tags in zip(gold, tags, strict=True))
        result.append(TaggedSplit(corpus, variant, tuple(gold), predicted))
    return result


def resolve_abbreviations(sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]],
                          window: int | None) -> list[list[str]]:
    """``tags`` of the pre-split ``sentences`` (read in order as one stream) after
    :class:`~ner.abbreviations.AbbreviationMemory` with ``window``, as the pipeline applies it
    to text. Each sentence is the text of its words joined by spaces; an abbreviation entity
    that does not fall on word boundaries is left out."""
    memory = AbbreviationMemory(window)
    result: list[list[str]] = []
    for words, sentence_tags in zip(sentences, tags, strict=True):
        if not words:
            memory.resolve("", [])  # an empty sentence still counts as one of the window
            result.append([])
            continue
        starts = list(accumulate((len(w) + 1 for w in words[:-1]), initial=0))
        text = " ".join(words)
        entities = [Entity(start=starts[s.start], end=starts[s.end - 1] + len(words[s.end - 1]),
                           text=" ".join(words[s.start:s.end]), type=EntityType(s.type),
                           score=1.0, source="model")
                    for s in spans_from_iob2(sentence_tags)]
        first = {start: i for i, start in enumerate(starts)}
        last = {start + len(w): i for i, (start, w) in enumerate(zip(starts, words, strict=True))}
        result.append(iob2_from_spans(len(words), (
            Span(first[e.start], last[e.end] + 1, e.type.value)
            for e in memory.resolve(text, entities) if e.start in first and e.end in last)))
    return result


RAW_VARIANTS = ("raw", "raw_pipeline")
RAW_LABELS = {"raw": " (raw text)", "raw_pipeline": " (raw text, pipeline)"}
"""How reports name each raw-text variant after the corpus name."""


@dataclass(frozen=True)
class TaggedRaw:
    """Gold and predicted character spans of the documents of one corpus split, one variant;
    ``original``: whether the texts are the corpus' originals (else detokenized CoNLL)."""

    corpus: str
    variant: str
    documents: tuple[RawDocument, ...]
    predicted: tuple[tuple[Span, ...], ...]
    original: bool


def conll_part(root: str | Path, corpus: str, split: str, part: Part) -> list[CorpusSentence]:
    """The CoNLL sentences of ``part`` of a split: those of the documents
    :func:`ner.raw_corpora.document_part` gives (the same halves as the raw text)."""
    sentences = load_split(root, corpus, split)
    if part == "all":
        return sentences
    documents, original = raw_split(root, corpus, split)
    if not original:  # detokenized: one document per sentence
        return [sentences[int(d.id.rsplit("-", 1)[1]) - 1] for d in document_part(documents, part)]
    chosen = {d.id for d in document_part(documents, part)}
    owners = sentence_documents([s.sentence.tokens for s in sentences], documents)
    return [s for s, owner in zip(sentences, owners, strict=True)
            if documents[owner].id in chosen]


def tag_raw_split(tagger: TransformerTagger, root: str | Path, corpus: str,
                  split: str = "devel", part: Part = "all",
                  variants: Sequence[str] = RAW_VARIANTS,
                  limit: int | None = None) -> list[TaggedRaw]:
    """``part`` of ``corpus``'s ``split`` as raw text (its first ``limit`` documents if
    given), tagged in ``variants`` (module docstring). Original documents are read one by one
    (an abbreviation applies within its document); detokenized sentences as a stream, as the
    CoNLL variants read them. Predicted types the corpus does not annotate are left out.
    Raises KeyError for an unknown variant."""
    documents, original = raw_split(root, corpus, split)
    chosen = document_part(documents, part)[:limit]
    annotated = {t.value for t in annotated_types(corpus)}
    texts = [d.text for d in chosen]
    result = []
    for variant in variants:
        if variant not in RAW_VARIANTS:
            raise KeyError(f"unknown variant {variant!r} (known: {', '.join(RAW_VARIANTS)})")
        memory = AbbreviationMemory(0 if original else DOCUMENT_WINDOW)
        if variant == "raw":
            own = corpus if corpus in tagger.heads.groups else None
            found = [memory.resolve(text, entities)
                     for text, entities in zip(texts, tagger.tag_batch(texts, own), strict=True)]
        else:
            found = pipeline_recognizer(tagger).recognize(
                texts, "en", None if original else memory)
        predicted = tuple(tuple(sorted({Span(e.start, e.end, e.type.value) for e in entities
                                        if e.type.value in annotated}))
                          for entities in found)
        result.append(TaggedRaw(corpus, variant, tuple(chosen), predicted, original))
    return result


def pipeline_recognizer(tagger: TransformerTagger) -> EntityRecognizer:
    """The recognizer ``medstream ner`` builds (``ner.build``) around an already loaded
    tagger: the tagger through its view, the built-in English lexicon, the rules."""
    return EntityRecognizer([TaggerRecognizer(tagger),
                             LexiconRecognizer([builtin_lexicon("en")])])
