"""The NEGATION trait in the NegEx style (Chapman et al. 2001), with triggers from data.

Trigger phrases of four kinds (:data:`ner.ruleset.TRIGGER_KINDS`) are found in the
accent-folded text; those inside an entity are ignored ("gram negative bacteria" is a name,
not a negation), and of overlapping phrases the longest wins, so a pseudo trigger ("not ruled
out") silences the trigger inside it ("ruled out").

- A *pre* trigger ("no", "denies", "kein", "pas de", "sin") negates the entities that *start*
  within its scope: the ``scope_words`` words after it, cut short by the next terminator
  phrase ("but", "aber", "mais", "pero") or sentence end (``.``, ``!``, ``?``, ``;``, ``:``,
  line break). Commas do not end a scope, so "denies fever, chills or cough" negates all three.
- A *post* trigger ("was ruled out", "ausgeschlossen") negates the entities that lie wholly in
  the ``scope_words`` words before it, back to the previous terminator or sentence end.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import replace

from ner.ruleset import TRIGGER_KINDS, NegationRules
from ner.spans import SpanIndex, longest_first
from ner.types import Entity

_PRE, _POST, _PSEUDO, _TERMINATOR = range(len(TRIGGER_KINDS))


def negate(folded: str, entities: Sequence[Entity], rules: NegationRules,
           sentence_ends: Sequence[tuple[int, int]], word_starts: Sequence[int]) -> list[Entity]:
    """``entities`` (sorted, non-overlapping) with ``negated=True`` where a trigger scopes them.

    ``folded`` is the accent-folded text, ``sentence_ends`` the sorted ``(start, end)`` spans of
    the sentence-ending marks and ``word_starts`` the sorted offsets of its words.
    """
    inside = SpanIndex((entity.start, entity.end) for entity in entities)
    regexes = (rules.pre, rules.post, rules.pseudo, rules.terminators)
    found = [(match.start(), match.end(), kind)
             for kind, regex in enumerate(regexes) if regex is not None
             for match in regex.finditer(folded)
             if not inside.overlaps(match.start(), match.end())]
    triggers = longest_first(found)
    stops = sorted([*sentence_ends,
                    *((start, end) for start, end, kind in triggers if kind == _TERMINATOR)])
    stop_starts = [start for start, _ in stops]
    stop_ends = sorted(end for _, end in stops)
    scopes: list[tuple[int, int, bool]] = []
    for start, end, kind in triggers:
        if kind == _PRE:
            following = bisect_left(stop_starts, end)
            stop = stop_starts[following] if following < len(stop_starts) else len(folded)
            last_word = bisect_left(word_starts, end) + rules.scope_words
            limit = word_starts[last_word] if last_word < len(word_starts) else len(folded)
            scopes.append((end, min(stop, limit), False))
        elif kind == _POST:
            preceding = bisect_right(stop_ends, start) - 1
            stop = stop_ends[preceding] if preceding >= 0 else 0
            first_word = max(0, bisect_left(word_starts, start) - rules.scope_words)
            limit = word_starts[first_word] if first_word < len(word_starts) else 0
            scopes.append((max(stop, limit), start, True))
    result = list(entities)
    starts = [entity.start for entity in result]
    for begin, finish, whole in scopes:
        for index in range(bisect_left(starts, begin), len(result)):
            entity = result[index]
            if entity.start >= finish:
                break
            if not whole or entity.end <= finish:
                result[index] = replace(entity, negated=True)
    return result
