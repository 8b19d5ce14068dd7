"""The recognizer medstream runs by default, described by a spec that also fingerprints it.

A :class:`RecognizerSpec` names the tagger model, the device and any extra term lists; ``build``
gives the :class:`~ner.recognizer.EntityRecognizer` (tagger + built-in English lexicon + the
term lists, with the rules), and ``fingerprint`` a digest of everything that changes what it
finds: the model weights, the term lists' content and the shipped lexicons and rule files. The
batch job stores the fingerprint with the entities it writes, so a re-run with other weights or
other term lists annotates again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ner.abbreviations import ABBREVIATIONS
from ner.catalog import DEFAULT_NER_MODEL, resolve_ner_model
from ner.datafiles import DATA_DIR
from ner.decoding import DECODING
from ner.lexicon import LexiconMatcher, builtin_lexicon
from ner.recognizer import EntityRecognizer, LexiconRecognizer, TaggerRecognizer
from speech.checksums import file_sha256


@dataclass(frozen=True)
class RecognizerSpec:
    """Which recognizer to build: tagger model (shipped name or directory), device, term lists.

    ``lexicons`` are TSV/CSV term lists (term, type[, code]) in ``language``; the built-in
    English lexicon is always included.
    """

    model: str = DEFAULT_NER_MODEL
    device: str = "cpu"
    language: str = "en"
    lexicons: tuple[Path, ...] = ()

    def build(self) -> EntityRecognizer:
        """Load the tagger and the term lists (raises MedstreamError when one is missing)."""
        # Imported here: torch is only needed once a tagger is built (not to describe one).
        from ner.tagger import TaggerOptions, TransformerTagger

        tagger = TransformerTagger(resolve_ner_model(self.model).path,
                                   TaggerOptions(device=self.device))
        matchers = [builtin_lexicon("en")]
        matchers += [LexiconMatcher.from_term_list(path, self.language)
                     for path in self.lexicons]
        return EntityRecognizer([TaggerRecognizer(tagger), LexiconRecognizer(matchers)])

    @property
    def identifier(self) -> str:
        """The model as it is reported (name or path, with the weights' sha256)."""
        return resolve_ner_model(self.model).identifier

    def fingerprint(self) -> str:
        """A digest of what decides the entities (the device is left out)."""
        shipped = sorted(p for p in DATA_DIR.glob("*/*")
                         if p.parent.name in ("lexicons", "patterns") and p.is_file())
        payload = {
            "model": self.identifier,
            "decoding": DECODING,
            "abbreviations": ABBREVIATIONS,
            "language": self.language,
            "lexicons": [file_sha256(Path(p)) for p in self.lexicons],
            "shipped": {f"{p.parent.name}/{p.name}": file_sha256(p) for p in shipped},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def build_recognizer(model: str, device: str, language: str,
                     lexicons: Sequence[Path]) -> EntityRecognizer:
    """Tagger + built-in English lexicon + the given term lists, with the rules."""
    return RecognizerSpec(model, device, language, tuple(lexicons)).build()
