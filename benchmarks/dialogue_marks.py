"""How often :mod:`ner.dialogue` marks entities asked and denied, with a sample to check by hand.

Runs the shipped recognizer (``medical-en`` with the built-in lexicon and the rules, as
``transcribe --entities`` does) over every turn of the role-labelled dialogues, one abbreviation
memory per conversation, applies :func:`ner.dialogue.mark_dialogue`, prints the counts per corpus
and writes a random sample of ``asked`` and ``negated_by`` marks (seeded) as Markdown, each with
the question and the answer, for a person to judge.

    python benchmarks/dialogue_marks.py --split valid --sample sample.md [--per-kind 50] \
        [--cache entities.json]

Tagging the train split takes minutes on a CPU; ``--cache`` keeps the recognized entities so
that a change of the rules is measured again in seconds.

Corpora: MTS-Dialog and ACI-Bench (``../shared/data/dialogue/<corpus>/<split>.jsonl``; the
data's ``role``: clinician, patient, other) and the four OSCE interviews
(``../shared/data/speech/fareez_osce_en/transcripts/*.txt``, ``D:``/``P:`` paragraphs).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.conversations import read_role_transcript
from ner.abbreviations import AbbreviationMemory
from ner.build import RecognizerSpec
from ner.dialogue import DialogueTurn, mark_dialogue
from ner.recognizer import EntityRecognizer
from ner.types import Entity
from speech.datafiles import json_lines

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class Conversation:
    corpus: str
    id: str
    turns: tuple[tuple[str | None, str], ...]
    """(role, text) in spoken order."""


def dialogues(corpus: str, split: str) -> list[Conversation]:
    """The MTS-Dialog or ACI-Bench dialogues of a split, turns without text left out."""
    path = SHARED / "dialogue" / corpus / f"{split}.jsonl"
    return [Conversation(corpus, str(row["id"]),
                         tuple((turn["role"], turn["text"]) for turn in row["turns"]
                               if turn["text"].strip()))
            for _, row in json_lines(path)]


def osce() -> list[Conversation]:
    """The four OSCE interviews."""
    folder = SHARED / "speech" / "fareez_osce_en" / "transcripts"
    return [Conversation("osce", path.stem,
                         tuple((turn.role, turn.text) for turn in read_role_transcript(path)))
            for path in sorted(folder.glob("*.txt"))]


def recognized(recognizer: EntityRecognizer, conversation: Conversation) -> list[list[Entity]]:
    """The entities of each turn (one abbreviation memory for the conversation)."""
    return recognizer.recognize([text for _, text in conversation.turns], "en",
                                AbbreviationMemory())


def marked(conversation: Conversation, found: Sequence[Sequence[Entity]]) -> list[DialogueTurn]:
    """The conversation's turns with their entities, asked and denied ones marked."""
    turns = [DialogueTurn(index, role, text, tuple(entities))
             for index, ((role, text), entities) in enumerate(zip(conversation.turns, found,
                                                                   strict=True))]
    return [DialogueTurn(turn.id, turn.role, turn.text, entities)
            for turn, entities in zip(turns, mark_dialogue(turns), strict=True)]


def recognize_all(corpora: dict[str, list[Conversation]], cache: Path | None
                  ) -> dict[str, list[list[list[Entity]]]]:
    """Every turn's entities, from ``cache`` when it exists (else recognized, and cached)."""
    if cache is not None and cache.exists():
        stored = json.loads(cache.read_text(encoding="utf-8"))
        return {name: [[[Entity.from_dict(e) for e in turn] for turn in conversation]
                       for conversation in stored[name]] for name in corpora}
    recognizer = RecognizerSpec().build()
    found = {name: [recognized(recognizer, c) for c in conversations]
             for name, conversations in corpora.items()}
    if cache is not None:
        cache.write_text(json.dumps({name: [[[e.to_dict() for e in turn] for turn in c]
                                            for c in conversations]
                                     for name, conversations in found.items()}),
                         encoding="utf-8")
    return found


def counts(turns: Sequence[DialogueTurn]) -> dict[str, int]:
    """Turns, entities, clinician entities, asked ones, and those negated by an answer."""
    return {"turns": len(turns),
            "entities": sum(len(turn.entities) for turn in turns),
            "clinician entities": sum(len(turn.entities) for turn in turns
                                      if turn.role == "clinician"),
            "asked": sum(entity.asked for turn in turns for entity in turn.entities),
            "negated_by": sum(entity.negated_by is not None
                              for turn in turns for entity in turn.entities)}


def _bracketed(text: str, entity: Entity) -> str:
    return f"{text[:entity.start]}[[{entity.text}]]{text[entity.end:]}"


def sample_lines(found: dict[str, list[list[DialogueTurn]]], kind: str, size: int,
                 rng: random.Random) -> list[str]:
    """``size`` random marks of one kind ("asked" or "negated_by"), each with its context."""
    marks = []
    for corpus, conversations in found.items():
        for turns in conversations:
            by_id = {turn.id: turn for turn in turns}
            for turn in turns:
                for entity in turn.entities:
                    if (entity.asked if kind == "asked" else entity.negated_by is not None):
                        marks.append((corpus, by_id, turn, entity))
    chosen = rng.sample(marks, min(size, len(marks)))
    lines = [f"## {kind}: {len(chosen)} of {len(marks)}", ""]
    for number, (corpus, by_id, turn, entity) in enumerate(chosen, start=1):
        lines.append(f"{number}. **{corpus}** `{entity.text}` — Q: {_bracketed(turn.text, entity)}")
        answer_id = entity.negated_by if entity.negated_by is not None else int(turn.id) + 1
        answer = by_id.get(answer_id)
        if answer is not None:
            lines.append(f"   - A ({answer.role}): {answer.text}")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="valid")
    parser.add_argument("--sample", type=Path, required=True, help="Markdown file to write")
    parser.add_argument("--per-kind", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path,
                        help="JSON file of the recognized entities: written on the first run, "
                             "read on later ones (to try rule changes without the tagger)")
    args = parser.parse_args()
    corpora = {"mts_dialog": dialogues("mts_dialog", args.split),
               "aci_bench": dialogues("aci_bench", args.split), "osce": osce()}
    entities = recognize_all(corpora, args.cache)
    found = {name: [marked(c, e) for c, e in zip(conversations, entities[name], strict=True)]
             for name, conversations in corpora.items()}
    for name, conversations in found.items():
        total: dict[str, int] = {}
        for turns in conversations:
            for key, value in counts(turns).items():
                total[key] = total.get(key, 0) + value
        print(name, f"{len(conversations)} conversations", total)
    rng = random.Random(args.seed)
    dialogue_data = {name: found[name] for name in ("mts_dialog", "aci_bench")}
    lines = [f"# ner.dialogue marks, {args.split} split (seed {args.seed})", ""]
    for kind in ("asked", "negated_by"):
        lines += sample_lines(dialogue_data, kind, args.per_kind, rng)
    lines += ["# OSCE interviews", ""]
    for kind in ("asked", "negated_by"):
        lines += sample_lines({"osce": found["osce"]}, kind, args.per_kind, rng)
    args.sample.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
