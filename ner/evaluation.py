"""Tag a CoNLL corpus split with the tagger, ready to score against its gold tags.

Predictions of a type the corpus does not annotate are turned into ``O`` before scoring: an
organ found in an NCBI-disease sentence is not an error, that corpus just never marks organs.
A model with a head for the corpus (:mod:`ner.heads`) is read through that head, which learnt
the corpus' annotation guidelines; otherwise through the model's view, as the pipeline reads it.
Each split is tagged as written and in its spoken style (lower case, no punctuation), the way
live transcripts look, and, for a model with several heads, as written through the view
(``pipeline_view``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.readers import TaggedSentence
from ner.corpora import asr_style, load_split
from ner.tagger import TransformerTagger

VARIANTS = ("original", "asr_style", "pipeline_view")
VARIANT_LABELS = {"original": "", "asr_style": " (spoken style)",
                  "pipeline_view": " (pipeline view)"}
"""How reports name each variant after the corpus name."""


@dataclass(frozen=True)
class TaggedSplit:
    """Gold and predicted sentences (same tokens) of one corpus split in one variant."""

    corpus: str
    variant: str
    gold: tuple[TaggedSentence, ...]
    predicted: tuple[TaggedSentence, ...]


def tag_split(tagger: TransformerTagger, root: str | Path, corpus: str, split: str = "devel",
              limit: int | None = None,
              variants: Sequence[str] | None = None) -> list[TaggedSplit]:
    """``corpus``'s ``split`` under ``root`` tagged in ``variants`` (default: all of
    :data:`VARIANTS` that apply to the model; ``pipeline_view`` only to one with heads)."""
    if variants is None:
        variants = VARIANTS if len(tagger.heads.groups) > 1 else VARIANTS[:2]
    own_head = corpus if corpus in tagger.heads.groups else None
    sentences = load_split(root, corpus, split)[:limit]
    annotated = {t.value for t in sentences[0].annotated} if sentences else set()
    texts = {
        "original": lambda: [s.sentence for s in sentences],
        "asr_style": lambda: [v for s in sentences if (v := asr_style(s.sentence)) is not None],
    }
    result = []
    for variant in variants:
        gold = texts["original" if variant == "pipeline_view" else variant]()
        head = None if variant == "pipeline_view" else own_head
        tags = tagger.tag_words([s.tokens for s in gold], head)
        predicted = tuple(
            TaggedSentence(s.tokens, tuple(t if t.partition("-")[2] in annotated else "O"
                                           for t in sentence_tags))
            for s, sentence_tags in zip(gold, tags, strict=True))
        result.append(TaggedSplit(corpus, variant, tuple(gold), predicted))
    return result
