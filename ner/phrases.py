"""Leftmost-longest phrase matching over folded words, for any payload.

A :class:`PhraseMatcher` compiles phrases (each carrying a payload: a typed term for the NER
lexicon, a glossary entry for translation) into a word trie. Phrases and text are split into
words (:func:`ner.folding.words`) and each word is reduced to a key (:class:`ner.folding.Folder`:
NFKC, casefold, accents optionally stripped, the language's inflection rules). A phrase occurs
where its key sequence occurs as a run of whole words with no hard gap (sentence punctuation)
inside. Occurrences are *leftmost-longest* and never overlap.

**Cost.** Scanning walks the trie from each word at most as deep as the longest phrase (in
words), so a text of ``n`` words costs at most ``n × max_words`` dictionary steps: linear in
the text for a given phrase list, whatever its size.

**Conflicts.** Phrases with the same key sequence are one phrase: the first added wins and the
others are counted in :attr:`PhraseMatcher.duplicates`. A phrase that yields no word, or
contains a hard gap ("spread, expand"), can never match: :meth:`PhraseMatcher.add` returns
False for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ner.folding import Folder, primary_language, words

T = TypeVar("T")


@dataclass(frozen=True)
class WordSpan(Generic[T]):
    """Words ``start`` to ``end`` (end exclusive) of a scanned text hold ``payload``'s phrase."""

    start: int
    end: int
    payload: T


@dataclass(frozen=True)
class PhraseMatch(Generic[T]):
    """Characters ``start`` to ``end`` (end exclusive) of a text hold ``payload``'s phrase."""

    start: int
    end: int
    payload: T


class _Node(Generic[T]):
    """A trie node: the word keys that may follow, and the phrase that ends here."""

    __slots__ = ("children", "payload")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.payload: T | None = None


class PhraseMatcher(Generic[T]):
    """Phrases of one language compiled for leftmost-longest matching (module docstring)."""

    def __init__(self, language: str, *, ignore_accents: bool = False,
                 inflections: bool = True) -> None:
        """``language`` picks the inflection rules; ``ignore_accents`` matches "fievre" with
        "fièvre"; ``inflections=False`` matches exact word forms only (still case-insensitive).
        """
        self.language = primary_language(language)
        self.folder = Folder(self.language, accents=not ignore_accents, inflections=inflections)
        self._root: _Node[T] = _Node()
        self.size = 0
        """Distinct phrases compiled."""
        self.duplicates = 0
        """Phrases dropped because an earlier phrase has the same keys."""
        self.max_words = 0
        """Words in the longest phrase: the most trie steps scanning takes from one word."""

    def add(self, phrase: str, payload: T) -> bool:
        """Compile ``phrase``; False when it can never match (no word, or a hard gap inside).
        A phrase with the keys of an earlier one is counted in :attr:`duplicates`."""
        phrase_words = list(words(phrase))
        if not phrase_words or any(word.hard_before for word in phrase_words[1:]):
            return False
        node = self._root
        for word in phrase_words:
            node = node.children.setdefault(self.folder.key(word.text), _Node())
        if node.payload is None:
            node.payload = payload
            self.size += 1
            self.max_words = max(self.max_words, len(phrase_words))
        else:
            self.duplicates += 1
        return True

    def scan(self, keys: Sequence[str], hard_before: Sequence[bool] | None = None
             ) -> Iterator[WordSpan[T]]:
        """Leftmost-longest, non-overlapping occurrences in a sequence of word keys.

        ``hard_before[i]`` says a hard gap precedes word ``i`` (a phrase may not span it). Each
        key is read at most :attr:`max_words` times.
        """
        position, length = 0, len(keys)
        while position < length:
            node, best, index = self._root, None, position
            while index < length:
                if index > position and hard_before is not None and hard_before[index]:
                    break
                child = node.children.get(keys[index])
                if child is None:
                    break
                node, index = child, index + 1
                if node.payload is not None:
                    best = WordSpan(position, index, node.payload)
            if best is None:
                position += 1
            else:
                yield best
                position = best.end

    def find(self, text: str) -> list[PhraseMatch[T]]:
        """The occurrences in ``text``, with character offsets, left to right."""
        text_words = list(words(text))
        keys = [self.folder.key(word.text) for word in text_words]
        hard = [word.hard_before for word in text_words]
        return [PhraseMatch(text_words[span.start].start, text_words[span.end - 1].end,
                            span.payload) for span in self.scan(keys, hard)]
