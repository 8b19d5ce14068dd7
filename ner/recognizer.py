"""Entity recognizers behind one interface, merged into one entity list, then the rules.

A :class:`Recognizer` takes a batch of texts in one language and returns the entities of each.
:class:`TaggerRecognizer` adapts the transformer tagger, :class:`LexiconRecognizer` the lexicon
matchers. :class:`EntityRecognizer` runs several, merges what they find (:func:`merge_entities`),
gives abbreviations the type of the long form the text defines them with
(:mod:`ner.abbreviations`) and applies the language's attribute and negation rules
(:mod:`ner.rules`).

**Merge precedence** (no two entities of the result overlap):

1. the longer span wins (a model's "severe chest pain" beats a lexicon's "chest pain");
2. on the same span, a lexicon entity carrying a concept code wins;
3. then the higher score;
4. then the recognizer listed first.

Rule 2 is what keeps a term list's concept code when the tagger finds exactly the same span:
the coded lexicon entity stands (with its type and code) whatever the model's score. Partial
overlaps are resolved by the same order, then the leftmost span; the lower-ranked entity is
dropped, never cut.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

from ner.abbreviations import AbbreviationMemory
from ner.folding import primary_language
from ner.lexicon import LexiconMatcher
from ner.rules import apply_rules, available_languages, load_rules
from ner.spans import non_overlapping
from ner.types import Entity


class Recognizer(Protocol):
    """Finds entities in a batch of texts of one language."""

    def recognize(self, texts: Sequence[str], language: str) -> list[list[Entity]]:
        """The entities of each text (character offsets into it), in input order."""
        ...


class BatchTagger(Protocol):
    """What :class:`TaggerRecognizer` needs of a tagger (``ner.tagger.TransformerTagger``)."""

    def tag_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The entities of each text."""
        ...


class TaggerRecognizer:
    """The transformer tagger as a recognizer, for the languages its model was trained on."""

    def __init__(self, tagger: BatchTagger, languages: Collection[str] | None = ("en",)) -> None:
        """``languages``: where the tagger runs (None: every language); other texts get []."""
        self.tagger = tagger
        self.languages = (None if languages is None
                          else frozenset(primary_language(code) for code in languages))

    def recognize(self, texts: Sequence[str], language: str) -> list[list[Entity]]:
        if self.languages is not None and primary_language(language) not in self.languages:
            return [[] for _ in texts]
        return self.tagger.tag_batch(texts)


class LexiconRecognizer:
    """Lexicon matchers as a recognizer: a text is matched by the matchers of its language."""

    def __init__(self, matchers: Iterable[LexiconMatcher]) -> None:
        self.matchers: dict[str, list[LexiconMatcher]] = {}
        for matcher in matchers:
            self.matchers.setdefault(matcher.language, []).append(matcher)

    def recognize(self, texts: Sequence[str], language: str) -> list[list[Entity]]:
        matchers = self.matchers.get(primary_language(language), [])
        return [[entity for matcher in matchers for entity in matcher.find_entities(text)]
                for text in texts]


def merge_entities(groups: Sequence[Sequence[Entity]]) -> list[Entity]:
    """One non-overlapping list from the entities of several recognizers (module docstring).

    ``groups[i]`` holds recognizer ``i``'s entities; the result is sorted by offset.
    """
    ranked = ((entity, order) for order, group in enumerate(groups) for entity in group)
    return [entity for entity, _ in non_overlapping(
        ranked, lambda item: (item[0].start, item[0].end), lambda item: _precedence(*item))]


def _precedence(entity: Entity, order: int) -> tuple[int, int, float, int, int]:
    coded_lexicon = entity.source == "lexicon" and entity.code is not None
    return (entity.start - entity.end, 0 if coded_lexicon else 1, -entity.score, order,
            entity.start)


class EntityRecognizer:
    """Several recognizers merged into one entity list, with attributes and negation.

    Rules run for languages with a rule file (:func:`ner.rules.available_languages`); text in
    another language gets merged entities without attributes or negation.
    """

    def __init__(self, recognizers: Sequence[Recognizer], rules: bool = True) -> None:
        """``recognizers`` in precedence order for ties; ``rules=False`` skips the rules."""
        if not recognizers:
            raise ValueError("EntityRecognizer needs at least one recognizer")
        self.recognizers = tuple(recognizers)
        self.rules = rules

    def recognize(self, texts: Sequence[str], language: str,
                  memory: AbbreviationMemory | None = None) -> list[list[Entity]]:
        """The merged, rule-annotated entities of each text of ``language``.

        Abbreviations a text defines apply within it. Pass a ``memory`` for texts that continue
        one another, in order (the segments of a transcript, the finals of a live session):
        definitions then carry over to the texts after them, and to later calls with the same
        memory.
        """
        found = [recognizer.recognize(texts, language) for recognizer in self.recognizers]
        for recognizer, result in zip(self.recognizers, found, strict=True):
            if len(result) != len(texts):
                raise RuntimeError(f"{type(recognizer).__name__} returned {len(result)} entity "
                                   f"lists for {len(texts)} texts")
        merged = []
        for index, text in enumerate(texts):
            reader = memory if memory is not None else AbbreviationMemory(window=0)
            merged.append(reader.resolve(text, merge_entities([result[index]
                                                               for result in found])))
        code = primary_language(language)
        if not self.rules or code not in available_languages():
            return merged
        rules = load_rules(code)
        return [apply_rules(text, entities, rules)
                for text, entities in zip(texts, merged, strict=True)]

    def recognize_one(self, text: str, language: str) -> list[Entity]:
        """:meth:`recognize` for a single text."""
        return self.recognize([text], language)[0]
