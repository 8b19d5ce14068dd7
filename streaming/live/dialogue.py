"""Asked and denied entities of a live session's finals, kept right while roles change.

:class:`ner.dialogue.DialogueMarker` marks the entities of one final at a time, from the roles
the finals have when they come: an entity in a clinician's question is *asked*; the patient's
"No" right after it negates it (and says so for the earlier final, which the engine then
updates). A role decided live can change later (:mod:`streaming.live.speakers`); when it does,
the marks of the whole session are made again with the roles as they now stand, and every
final whose marks differ from what its client was told gets them anew.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ner.dialogue import DialogueMarker, DialogueTurn
from ner.types import Entity

Entities = tuple[Entity, ...]


class LiveDialogue:
    """The dialogue marks of one session's finals (one thread, final after final)."""

    def __init__(self) -> None:
        self._turns: dict[int, DialogueTurn] = {}
        """Every final with entities recognised, as recognised (unmarked), in order."""
        self._told: dict[int, Entities] = {}
        """The marked entities each final's client has."""
        self._marker = DialogueMarker()

    def add(self, final: int, role: str | None, text: str, entities: Entities,
            roles: Mapping[int, str | None]) -> tuple[Entities, dict[int, Entities]]:
        """The marked entities of final ``final`` (said in ``role``), and of each earlier final
        whose marks this changes. ``roles``: earlier finals whose role changed since they were
        added, with their new role."""
        turn = DialogueTurn(final, role, text, entities)
        self._turns[final] = turn
        moved = {earlier: role for earlier, role in roles.items()
                 if earlier in self._turns and self._turns[earlier].role != role}
        if moved:
            marked = self._again(moved)
        else:
            step = self._marker.feed(turn)
            marked = {final: step.entities, **{int(earlier): entities
                                                for earlier, entities in step.updates}}
        changed = {earlier: entities for earlier, entities in marked.items()
                   if earlier != final and self._told.get(earlier) != entities}
        self._told.update(marked)
        return marked[final], changed

    def _again(self, roles: Mapping[int, str | None]) -> dict[int, Entities]:
        """Every final's marks anew, with the ``roles`` that changed."""
        for earlier, role in roles.items():
            self._turns[earlier] = replace(self._turns[earlier], role=role)
        self._marker = DialogueMarker()
        marked: dict[int, Entities] = {}
        for final, turn in self._turns.items():
            step = self._marker.feed(turn)
            marked[final] = step.entities
            marked.update((int(earlier), entities) for earlier, entities in step.updates)
        return marked
