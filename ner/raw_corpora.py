"""NER corpora as users hand text over: raw text with gold entities as character spans.

Two sources give the same :class:`RawDocument`:

* ``<corpus>/<split>.raw.jsonl``, the text as written with character offsets (NCBI-disease's
  PubTator originals: one abstract a line, ``{"id", "text", "entities": [{"start", "end",
  "type", ...}]}``, end exclusive). Every entity type of the file maps to one schema type through
  :data:`RAW_TYPES` or the corpus' CoNLL label table.
* the CoNLL file of a corpus without originals (BC5CDR, AnatEM here), each sentence
  **detokenized** (:func:`detokenize`): spaces dropped before closing punctuation and after
  opening brackets, hyphens and slashes glued to both neighbours. This is a reconstruction, not
  the original: on NCBI-disease devel, where both forms exist, 92 % of sentences come out
  character for character as written (the misses: "Addison ' s", "5. 1%", arrows "--> ").

:func:`document_part` splits a list of documents in two halves by position (the first half to
choose settings on, the second to report on), as the honest protocol of ``medstream eval ner``
wants.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Literal, get_args

from ner.corpora import load_split
from ner.errors import NerDataError
from ner.iob import Span
from ner.schema import EntityType, labels_of

Part = Literal["all", "choose", "report"]
PARTS: tuple[Part, ...] = get_args(Part)
RAW_TYPES: dict[str, EntityType] = {
    "SpecificDisease": EntityType.MEDICAL_CONDITION,
    "DiseaseClass": EntityType.MEDICAL_CONDITION,
    "Modifier": EntityType.MEDICAL_CONDITION,
    "CompositeMention": EntityType.MEDICAL_CONDITION,
}
"""NCBI-disease's PubTator mention classes (all diseases), as in ``*.raw.jsonl``."""
_NO_SPACE_BEFORE = frozenset(",.;:)]}%?!")
_NO_SPACE_AFTER = frozenset("([{")
_GLUED = frozenset("-/")
_PREFIX = 40  # characters (without white space) that place a sentence


@dataclass(frozen=True)
class RawDocument:
    """One text and its gold entities: ``Span(start, end, type)`` over characters of ``text``
    (end exclusive), ``type`` a schema type's value."""

    id: str
    text: str
    spans: tuple[Span, ...]


def raw_split(root: str | Path, corpus: str, split: str) -> tuple[list[RawDocument], bool]:
    """``corpus``'s ``split`` under ``root`` as raw documents, and whether they are the
    originals (``<split>.raw.jsonl``) rather than detokenized CoNLL sentences."""
    path = Path(root) / corpus / f"{split}.raw.jsonl"
    if path.is_file():
        return read_raw_jsonl(path, corpus), True
    documents = []
    for number, item in enumerate(load_split(root, corpus, split)):
        tokens = item.sentence.tokens
        text, starts = detokenize(tokens)
        spans = tuple(Span(starts[s.start], starts[s.end - 1] + len(tokens[s.end - 1]), s.type)
                      for s in item.sentence.spans)
        documents.append(RawDocument(f"{corpus}-{split}-{number + 1}", text, spans))
    return documents, False


def read_raw_jsonl(path: str | Path, corpus: str | None = None) -> list[RawDocument]:
    """The documents of a raw JSONL file (module docstring); entity types may be schema types,
    :data:`RAW_TYPES` or ``corpus``' CoNLL names. Raises NerDataError, naming the line, for a
    malformed line, an unknown type or an offset that does not fit the text."""
    table: dict[str, EntityType] = {**{t.value: t for t in EntityType}, **RAW_TYPES,
                                    **(labels_of(corpus) if corpus else {})}
    documents = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                documents.append(_document(json.loads(line), table, number))
            except (KeyError, TypeError, ValueError) as exc:
                raise NerDataError(f"{path}:{number}: {exc}") from None
    return documents


def _document(record: dict[str, object], table: dict[str, EntityType],
              number: int) -> RawDocument:
    text = record["text"]
    entities = record.get("entities", [])
    if not isinstance(text, str) or not isinstance(entities, list):
        raise ValueError("needs a string 'text' and a list 'entities'")
    spans = []
    for entity in entities:
        start, end, kind = int(entity["start"]), int(entity["end"]), str(entity["type"])
        if kind not in table:
            raise ValueError(f"entity type {kind!r} is not one of {', '.join(table)}")
        if not 0 <= start < end <= len(text):
            raise ValueError(f"entity offsets {start}:{end} do not fit a text of {len(text)} "
                             "characters")
        if "text" in entity and text[start:end] != entity["text"]:
            raise ValueError(f"entity {entity['text']!r} is {text[start:end]!r} at "
                             f"{start}:{end}")
        spans.append(Span(start, end, table[kind].value))
    return RawDocument(str(record.get("id", number)), text, tuple(sorted(set(spans))))


def detokenize(tokens: Sequence[str]) -> tuple[str, list[int]]:
    """``tokens`` joined as written text (module docstring), and each token's start offset."""
    separators = ["" if k == 0 or _glued(tokens[k - 1], tokens[k]) else " "
                  for k in range(len(tokens))]
    pieces = [separator + token for separator, token in zip(separators, tokens, strict=True)]
    ends = list(accumulate(len(piece) for piece in pieces))
    starts = [end - len(token) for end, token in zip(ends, tokens, strict=True)]
    return "".join(pieces), starts


def _glued(before: str, token: str) -> bool:
    return (token in _NO_SPACE_BEFORE or before in _NO_SPACE_AFTER or token in _GLUED
            or before in _GLUED)


def document_part(documents: Sequence[RawDocument], part: Part) -> list[RawDocument]:
    """The first half of ``documents`` (``choose``), the second (``report``) or ``all``."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r} (choose from {', '.join(PARTS)})")
    middle = (len(documents) + 1) // 2
    if part == "choose":
        return list(documents[:middle])
    return list(documents[middle:]) if part == "report" else list(documents)


def sentence_documents(sentences: Sequence[Sequence[str]],
                       documents: Sequence[RawDocument]) -> list[int]:
    """For each CoNLL sentence (its tokens), the index of the raw document it comes from, so a
    CoNLL split can be cut into the same halves as its originals (the files need not keep the
    same document order). A sentence is placed by its text without white space: it continues
    the current document where it fits there, else it opens the document that starts with it.
    Raises NerDataError for a sentence found in no document."""
    squeezed = ["".join(d.text.split()) for d in documents]
    result = []
    current, position = -1, 0
    for number, tokens in enumerate(sentences, 1):
        head = "".join(tokens)[:_PREFIX]
        opened = next((i for i, text in enumerate(squeezed) if text.startswith(head)), None)
        if current >= 0 and squeezed[current].startswith(head, position):
            position += len("".join(tokens))
        elif opened is not None:
            current, position = opened, len("".join(tokens))
        else:
            raise NerDataError(f"sentence {number} ({' '.join(tokens[:8])} ...) is in none of "
                               "the raw documents")
        result.append(current)
    return result
