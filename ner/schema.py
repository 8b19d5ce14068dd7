"""The entity schema, modelled on Amazon Comprehend Medical, and how corpus labels map onto it.

Comprehend Medical's ``DetectEntitiesV2`` sorts clinical text into six categories, attaches
attributes to medications (dosage, strength, frequency, route, duration, form) and marks traits
such as negation. medstream uses the same names, so an entity list reads the same whichever
recognizer (lexicon, rules or the transformer tagger) produced it.

The training corpora name their types differently and each annotates only some of them; the
tables below say which label means which schema type, and :func:`annotated_types` says which
types a corpus annotates at all (everything else in it is unlabelled, not "not an entity").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum


class EntityType(str, Enum):
    """An entity category (Comprehend Medical's ``Category``)."""

    MEDICATION = "MEDICATION"
    """Drug names (brand and generic) and other chemicals given to a patient."""
    MEDICAL_CONDITION = "MEDICAL_CONDITION"
    """Diseases, disorders, signs and symptoms."""
    ANATOMY = "ANATOMY"
    """Body parts, organs, tissues, cells and body systems."""
    TEST_TREATMENT_PROCEDURE = "TEST_TREATMENT_PROCEDURE"
    """Tests, treatments and procedures (diagnostics, surgery, therapy)."""
    PROTECTED_HEALTH_INFORMATION = "PROTECTED_HEALTH_INFORMATION"
    """Personal data: name, age, address, profession, ids, contact details."""
    TIME_EXPRESSION = "TIME_EXPRESSION"
    """Dates and times that anchor another entity ("two weeks ago", "since Monday")."""


class AttributeType(str, Enum):
    """An attribute linked to a MEDICATION entity."""

    DOSAGE = "DOSAGE"
    """Amount ordered per administration ("two tablets")."""
    STRENGTH = "STRENGTH"
    """Strength of the preparation ("500 mg")."""
    FREQUENCY = "FREQUENCY"
    """How often it is taken ("three times daily")."""
    ROUTE = "ROUTE"
    """How it is administered ("by mouth"); Comprehend Medical calls this ``ROUTE_OR_MODE``."""
    DURATION = "DURATION"
    """How long it is taken ("for ten days")."""
    FORM = "FORM"
    """Physical form ("tablet", "syrup")."""


class Trait(str, Enum):
    """A trait of an entity; only negation so far ("no fever", "denies chest pain")."""

    NEGATION = "NEGATION"


CORPUS_LABELS: Mapping[str, Mapping[str, EntityType]] = {
    # NCBI-disease (Doğan et al. 2014): disease mentions in PubMed abstracts.
    "ncbi_disease": {"Disease": EntityType.MEDICAL_CONDITION},
    # BC5CDR (Li et al. 2016): chemicals and diseases. Its "Chemical" covers drugs and other
    # chemicals alike; Comprehend Medical's MEDICATION is the nearest type.
    "bc5cdr": {"Chemical": EntityType.MEDICATION, "Disease": EntityType.MEDICAL_CONDITION},
    # AnatEM (Pyysalo & Ananiadou 2014): the 12 anatomical entity types, collapsed to one
    # "Anatomy" label in the IOB release used here.
    "anatem": {"Anatomy": EntityType.ANATOMY},
}
"""The IOB2 type names of the CoNLL corpora in ``shared/data/ner``, per corpus folder."""


VIETMED_NER_LABELS: Mapping[str, EntityType | None] = {
    # VietMed-NER (Le-Duc et al., "Medical Spoken Named Entity Recognition", NAACL 2025
    # Industry; leduckhai/VietMed-NER) has 18 types. The names are as the dataset spells them
    # (DISEASESYMTOM, sic), as listed by projects that train on it; the dataset itself was not
    # available offline to confirm the list against. None = no Comprehend Medical equivalent.
    "DISEASESYMTOM": EntityType.MEDICAL_CONDITION,
    "DRUGCHEMICAL": EntityType.MEDICATION,
    "ORGAN": EntityType.ANATOMY,
    "DIAGNOSTICS": EntityType.TEST_TREATMENT_PROCEDURE,
    "SURGERY": EntityType.TEST_TREATMENT_PROCEDURE,
    "TREATMENT": EntityType.TEST_TREATMENT_PROCEDURE,
    # Approximate: devices and preventive measures (vaccination, screening) are closest to
    # procedures; Comprehend Medical has no device category.
    "MEDDEVICETECHNIQUE": EntityType.TEST_TREATMENT_PROCEDURE,
    "PREVENTIVEMED": EntityType.TEST_TREATMENT_PROCEDURE,
    "DATETIME": EntityType.TIME_EXPRESSION,
    # Comprehend Medical's PHI subtypes include AGE, ADDRESS and PROFESSION.
    "AGE": EntityType.PROTECTED_HEALTH_INFORMATION,
    "LOCATION": EntityType.PROTECTED_HEALTH_INFORMATION,
    "OCCUPATION": EntityType.PROTECTED_HEALTH_INFORMATION,
    "GENDER": None,
    "ORGANIZATION": None,
    "TRANSPORTATION": None,
    "FOODDRINK": None,
    "PERSONALCARE": None,
    # Mostly qualifiers ("high", "a lot") rather than doses, so not mapped to DOSAGE/STRENGTH.
    "UNITCALIBRATOR": None,
}
"""VietMed-NER's types and the schema type each one becomes (None: dropped)."""


def annotated_types(corpus: str) -> frozenset[EntityType]:
    """The schema types that ``corpus`` (a key of :data:`CORPUS_LABELS`) annotates."""
    return frozenset(labels_of(corpus).values())


def labels_of(corpus: str) -> Mapping[str, EntityType]:
    """The label table of ``corpus``; raises ValueError naming the known corpora."""
    try:
        return CORPUS_LABELS[corpus]
    except KeyError:
        known = ", ".join(sorted(CORPUS_LABELS))
        raise ValueError(f"unknown NER corpus {corpus!r} (known: {known})") from None


def iob2_labels(types: Iterable[EntityType]) -> tuple[str, ...]:
    """``O`` followed by ``B-T``, ``I-T`` for each type, in schema order (the model's labels)."""
    wanted = set(types)
    ordered = [t for t in EntityType if t in wanted]
    return ("O", *(f"{prefix}-{t.value}" for t in ordered for prefix in ("B", "I")))


def type_of_label(label: str) -> EntityType | None:
    """The schema type of an IOB2 label (``B-ANATOMY`` → ANATOMY), None for ``O``.

    Raises ValueError for a label that is not ``O``, ``B-<type>`` or ``I-<type>`` with a type
    of :class:`EntityType`.
    """
    if label == "O":
        return None
    prefix, _, name = label.partition("-")
    if prefix not in {"B", "I"} or name not in EntityType.__members__:
        raise ValueError(f"label {label!r} is not O, B-<type> or I-<type> with a type of "
                         f"{', '.join(EntityType.__members__)}")
    return EntityType(name)
