"""Token-per-line IOB2 NER files (CoNLL): the training and evaluation corpora's format."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ner.iob import Span, check_tag, spans_from_iob2
from speech.datafiles import text_lines
from speech.errors import DataFileError


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence's tokens and their IOB2 tags (``O``, ``B-X``, ``I-X``)."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.tags)} tags")

    @property
    def spans(self) -> tuple[Span, ...]:
        """The entity spans of the tags, read as :func:`ner.iob.spans_from_iob2` does."""
        return tuple(spans_from_iob2(self.tags))


def read_conll(path: str | Path) -> list[TaggedSentence]:
    """The sentences of a token-per-line file, with a blank line between sentences.

    Each line is tab-separated with the token first and the tag last (columns in between are
    ignored; a line without any tab is split on whitespace instead). ``-DOCSTART-`` lines are
    skipped and empty sentences are never returned. Tags must be ``O``, ``B-X`` or ``I-X``;
    an ``I-X`` that does not continue an ``X`` is accepted (it starts a span, as in seqeval).
    """
    file = Path(path)
    sentences: list[TaggedSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    for number, line in enumerate([*text_lines(file), ""], start=1):
        if not line.strip():
            if tokens:
                sentences.append(TaggedSentence(tuple(tokens), tuple(tags)))
                tokens, tags = [], []
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if fields[0] == "-DOCSTART-":
            continue
        if len(fields) < 2:
            raise DataFileError(file, number, f"expected 'token<TAB>tag', found {line!r}")
        token, tag = fields[0], fields[-1].strip()
        if not token:
            raise DataFileError(file, number, "the token (first column) is empty")
        if not check_tag(tag):
            raise DataFileError(file, number, f"bad IOB2 tag {tag!r} "
                                                "(expected O, B-<type> or I-<type>)")
        tokens.append(token)
        tags.append(tag)
    return sentences


def write_conll(sentences: Iterable[TaggedSentence], path: str | Path) -> None:
    """Write ``token<TAB>tag`` lines with a blank line after each sentence."""
    lines = []
    for sentence in sentences:
        for token, tag in zip(sentence.tokens, sentence.tags, strict=True):
            if not token or any(c in token for c in "\t\n\r") or token != token.strip():
                raise ValueError(f"token {token!r} cannot be written to a CoNLL file")
            if not check_tag(tag):
                raise ValueError(f"bad IOB2 tag {tag!r}")
            lines.append(f"{token}\t{tag}\n")
        lines.append("\n")
    Path(path).write_text("".join(lines), encoding="utf-8")
