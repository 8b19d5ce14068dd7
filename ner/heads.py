"""Output heads of a tagger: one label group per annotation convention, and a default view.

NCBI-disease and BC5CDR both mark diseases, but by different guidelines: NCBI-disease takes
modifiers and coordinations into the span ("inherited breast and ovarian cancer"), BC5CDR marks
symptoms and adverse effects ("hypotension", "pain") that NCBI-disease leaves out. One output
layer trained on both learns neither convention well: most of the tagger's errors on both devel
sets were boundary errors (strict F1 5 points under partial-match F1 on NCBI-disease).

A model trained with ``heads: per_corpus`` therefore has one label group per training corpus
over a shared encoder (multi-task learning): its classifier's outputs are the groups side by
side, each group ``O, B-T, I-T, ...`` for the types that corpus annotates, and each group is a
softmax of its own. Each group is trained only on its corpus, with ordinary cross-entropy (no
partial labels are needed: a corpus annotates every type of its own group).

Reading a text, the tagger uses either one named head (evaluation on a corpus uses that
corpus' head) or the *view*: for each entity type, the head that speaks for it in the pipeline
(by default MEDICATION and MEDICAL_CONDITION from BC5CDR, whose diseases include symptoms as a
consultation has them, ANATOMY from AnatEM); where spans from different heads overlap, the
type earlier in the schema wins (AnatEM marks tumours and cancers as pathological anatomy:
"breast cancer" is a condition), then the longer span. A model without heads (one softmax
over all labels, as trained with ``heads: shared``) is a single head named ``shared`` that
speaks for every type.

The groups and the view are stored in the model's ``config.json`` (``medstream_heads``) and in
the CTranslate2 export's manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ner.schema import EntityType, annotated_types, iob2_labels, type_of_label

SHARED = "shared"
CONFIG_KEY = "medstream_heads"


@dataclass(frozen=True)
class Heads:
    """Label groups by head name, and the head each entity type is read from by default."""

    groups: Mapping[str, tuple[int, ...]]
    """Head name → indices into the model's labels (each group starts with its ``O``)."""
    view: Mapping[EntityType, str]

    @classmethod
    def shared(cls, labels: Sequence[str]) -> Heads:
        """One head over all ``labels``, speaking for every type in them."""
        types = {t for label in labels if (t := type_of_label(label)) is not None}
        return cls({SHARED: tuple(range(len(labels)))}, dict.fromkeys(types, SHARED))

    @classmethod
    def per_corpus(cls, corpora: Sequence[str],
                   view: Mapping[str, str] | None = None) -> tuple[tuple[str, ...], Heads]:
        """The model's labels and heads for one group per corpus in ``corpora``.

        ``view`` maps type names to the corpus read for them; a type it does not name is read
        from the first corpus in ``corpora`` that annotates it. Raises ValueError for a view
        entry naming a corpus that is not trained or that does not annotate the type.
        """
        labels: list[str] = []
        groups: dict[str, tuple[int, ...]] = {}
        for corpus in corpora:
            group = iob2_labels(annotated_types(corpus))
            groups[corpus] = tuple(range(len(labels), len(labels) + len(group)))
            labels.extend(group)
        chosen: dict[EntityType, str] = {}
        for name, corpus in (view or {}).items():
            kind = EntityType(name)
            if corpus not in groups or kind not in annotated_types(corpus):
                raise ValueError(f"view: {name} cannot be read from {corpus!r}: the trained "
                                 f"corpora annotating it are "
                                 f"{[c for c in corpora if kind in annotated_types(c)]}")
            chosen[kind] = corpus
        for corpus in corpora:
            for kind in annotated_types(corpus):
                chosen.setdefault(kind, corpus)
        return tuple(labels), cls(groups, chosen)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, labels: Sequence[str]) -> Heads:
        """Read :meth:`to_json`'s form; None (a model trained without heads) is one head.

        Raises ValueError when the groups do not fit ``labels``.
        """
        if data is None:
            return cls.shared(labels)
        groups = {str(name): tuple(int(i) for i in ids) for name, ids in data["groups"].items()}
        heads = cls(groups, {EntityType(t): str(h) for t, h in data["view"].items()})
        heads.check(labels)
        return heads

    def to_json(self) -> dict[str, Any]:
        return {"groups": {name: list(ids) for name, ids in self.groups.items()},
                "view": {kind.value: head for kind, head in self.view.items()}}

    def check(self, labels: Sequence[str]) -> None:
        """Raise ValueError unless every group is in range and starts with ``O``, and the view
        reads every type from a head that has it."""
        for name, ids in self.groups.items():
            if not ids or any(i < 0 or i >= len(labels) for i in ids) or labels[ids[0]] != "O":
                raise ValueError(f"head {name!r}: label indices {list(ids)} do not fit the "
                                 f"model's {len(labels)} labels or do not start with O")
        for kind, name in self.view.items():
            if name not in self.groups or f"B-{kind.value}" not in self.labels_of(name, labels):
                raise ValueError(f"view: {kind.value} is read from head {name!r}, which does "
                                 "not tag it")

    def labels_of(self, name: str, labels: Sequence[str]) -> tuple[str, ...]:
        return tuple(labels[i] for i in self.groups[name])

    def types_viewed_from(self, name: str) -> frozenset[EntityType]:
        return frozenset(kind for kind, head in self.view.items() if head == name)
