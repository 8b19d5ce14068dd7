"""The CoNLL NER corpora in schema types, and their spoken-style (ASR-like) variant.

Each corpus folder under the data root (``shared/data/ner``) holds ``train.tsv`` and
``devel.tsv`` (token per line, IOB2). Loading maps the corpus' own type names onto
:class:`~ner.schema.EntityType` with :data:`~ner.schema.CORPUS_LABELS`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ner.conll import TaggedSentence, read_conll
from ner.iob import spans_from_iob2
from ner.schema import EntityType, annotated_types, labels_of


@dataclass(frozen=True)
class CorpusSentence:
    """A sentence in schema-typed IOB2 tags, and the types its corpus annotates."""

    corpus: str
    sentence: TaggedSentence
    annotated: frozenset[EntityType]


def load_split(root: str | Path, corpus: str, split: str) -> list[CorpusSentence]:
    """The sentences of ``root/corpus/split.tsv`` with tags mapped to schema types.

    Raises FileNotFoundError when the file is absent and ValueError for a type name the
    corpus' label table does not know.
    """
    table = labels_of(corpus)
    path = Path(root) / corpus / f"{split}.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the NER corpora are expected under "
                                f"{Path(root)}/<corpus>/{{train,devel}}.tsv")
    annotated = annotated_types(corpus)
    result = []
    for sentence in read_conll(path):
        tags = []
        for tag in sentence.tags:
            prefix, _, name = tag.partition("-")
            if tag == "O":
                tags.append(tag)
            elif name in table:
                tags.append(f"{prefix}-{table[name].value}")
            else:
                raise ValueError(f"{path}: type {name!r} is not in the label table of {corpus} "
                                 f"({', '.join(table)}); add it to ner.schema.CORPUS_LABELS")
        result.append(CorpusSentence(corpus, TaggedSentence(sentence.tokens, tuple(tags)),
                                     annotated))
    return result


def _unpunctuated(token: str) -> str:
    return "".join(c for c in token if not unicodedata.category(c).startswith("P")).lower()


def asr_style(sentence: TaggedSentence) -> TaggedSentence | None:
    """``sentence`` as a speech recogniser would write it: lower case, no punctuation.

    Punctuation characters are removed from every token and tokens left empty are dropped; an
    entity keeps its remaining tokens (``Parkinson ' s disease`` → ``parkinson s disease``) and
    vanishes only if all of them went. Returns None when no token is left.
    """
    kept = [i for i, token in enumerate(sentence.tokens) if _unpunctuated(token)]
    if not kept:
        return None
    new_index = {old: new for new, old in enumerate(kept)}
    tags = ["O"] * len(kept)
    for span in spans_from_iob2(sentence.tags):
        inside = [new_index[i] for i in range(span.start, span.end) if i in new_index]
        for position, index in enumerate(inside):
            tags[index] = f"{'B' if position == 0 else 'I'}-{span.type}"
    return TaggedSentence(tuple(_unpunctuated(sentence.tokens[i]) for i in kept), tuple(tags))
