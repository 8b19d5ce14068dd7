"""Speaker roles: who in a conversation is the clinician, who the patient, who someone else.

A :class:`RoleClassifier` is a linear model over what one turn says (:mod:`ner.role_features`:
word n-grams and cues such as questions, second person, imperatives), trained by
``recipes/roles`` on the role-labelled dialogues of MTS-Dialog and ACI-Bench and shipped in
``ner/models/<name>/model.json`` (weights as JSON, read with numpy: no pickle), pinned by its
sha256 like the other shipped models (:mod:`speech.packaged`, kind ``roles``). Its model card
is the folder's ``README.md``.

:meth:`RoleClassifier.speakers` decides per speaker, from all of a conversation's turns:

1. each turn gets log-probabilities of the three roles; a speaker's evidence is their sum over
   the speaker's turns, times the model's ``temperature`` (turns of one speaker are not
   independent: summing them unscaled would be overconfident; the recipe fits it);
2. the two speakers with the most words are the main pair: one is the clinician and the other
   the patient, whichever of the two assignments the evidence favours, with the probability of
   that assignment against the swapped one as both confidences (a lone speaker gets the likelier
   of clinician and patient); the patient's side is ``other`` instead (a relative who speaks
   for a child, say) when their turns read as other's by more than the model's
   ``other_margin`` per turn;
3. every other speaker is a second clinician when the evidence says so and they said at least
   ``min_words`` words, and ``other`` (a relative, an interpreter, a diarization fragment)
   otherwise: a conversation has one patient, and they are one of the main pair.

In interpreter mode the parties' languages say who is who: :func:`roles_from_languages`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from ner.role_features import FEATURES_VERSION, known, turn_features, word_count
from speech.checksums import file_sha256
from speech.errors import ModelIntegrityError, ModelNotFoundError
from speech.packaged import PinnedModel, identifier, pinned_models, register, resolve_pinned

Role = Literal["clinician", "patient", "other"]
ROLES: tuple[Role, ...] = get_args(Role)
CLINICIAN, PATIENT, OTHER = range(3)

FORMAT = "medstream-roles/1"
MODEL_FILE = "model.json"
MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_ROLES_MODEL = "roles-en"
TURN_CACHE = 4096
"""Turns whose scores a classifier keeps (a long consultation has a few hundred)."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RoleGuess:
    """A role and the probability that it is right (0..1)."""

    role: Role
    confidence: float

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r} (known: {', '.join(ROLES)})")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is outside 0..1")


@dataclass(frozen=True)
class RoleSettings:
    """How turn scores become speaker roles (chosen by the recipe, stored in the model)."""

    temperature: float
    """Factor on a speaker's summed turn log-probabilities (0 < t <= 1)."""
    min_words: int
    """A speaker outside the main pair with fewer words is ``other`` whatever they said."""
    other_margin: float | None = None
    """The patient's side of the main pair is ``other`` when their turns' log-odds of other
    against patient exceed this on average (None: never)."""


def _shipped(name: str, description: str, weights_sha256: str) -> PinnedModel:
    folder = MODELS_DIR / name
    return PinnedModel(kind="roles", name=name, description=description, folder=folder,
                       weights=(folder / MODEL_FILE,), weights_sha256=weights_sha256)


register(
    _shipped("roles-en",
             "English speaker roles (clinician, patient, other) from what each speaker says; "
             "linear model over word n-grams and cues, trained on MTS-Dialog and ACI-Bench by "
             "recipes/roles",
             "20f7bec2cf6c83ce7cc3957d5a2a17e0e007a8cbe7703059d45abd618f42df17"),
)


class RoleClassifier:
    """Roles of turns and of a conversation's speakers (see the module's docstring)."""

    def __init__(self, vocabulary: Sequence[str], weights: FloatArray, bias: FloatArray,
                 settings: RoleSettings, identifier: str) -> None:
        if weights.shape != (len(vocabulary), len(ROLES)) or bias.shape != (len(ROLES),):
            raise ValueError(f"weights {weights.shape} and bias {bias.shape} do not fit "
                             f"{len(vocabulary)} features and {len(ROLES)} roles")
        self.vocabulary = {name: index for index, name in enumerate(vocabulary)}
        self.weights = weights
        self.bias = bias
        self.settings = settings
        self.identifier = identifier
        """How outputs name the model: name, sha256 of its weights."""
        # A live session asks for the roles of the whole conversation after every final:
        # each turn is scored once (lru_cache is thread-safe; the arrays are read-only).
        self._scored = functools.lru_cache(maxsize=TURN_CACHE)(self._score)

    @classmethod
    def load(cls, name: str = DEFAULT_ROLES_MODEL) -> RoleClassifier:
        """A shipped model by name (sha256 verified), or a model file or folder by path (a
        ``recipes/roles`` output). Loaded once per process."""
        return _load(name)

    @classmethod
    def from_file(cls, path: Path, label: str | None = None) -> RoleClassifier:
        """The model in ``path`` (a ``model.json``); ``label`` is its identifier (default:
        its path and sha256)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelIntegrityError(f"cannot read the speaker-role model {path}: {exc}") \
                from exc
        if label is None:
            label = identifier(str(path.resolve()), file_sha256(path))
        return cls.from_dict(data, label, path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], label: str, where: Path | str = "<dict>"
                  ) -> RoleClassifier:
        """A model from its JSON form (what the recipe writes); refuses another format."""
        if data.get("format") != FORMAT or data.get("features") != FEATURES_VERSION:
            raise ModelIntegrityError(
                f"{where} is not a speaker-role model of this medstream (format "
                f"{data.get('format')!r}, features {data.get('features')!r}; expected "
                f"{FORMAT!r}, {FEATURES_VERSION!r})")
        if tuple(data.get("classes", ())) != ROLES:
            raise ModelIntegrityError(f"{where} has classes {data.get('classes')}, not {ROLES}")
        try:
            return cls(vocabulary=[str(name) for name in data["vocabulary"]],
                       weights=np.asarray(data["weights"], dtype=np.float64),
                       bias=np.asarray(data["bias"], dtype=np.float64),
                       settings=RoleSettings(
                           temperature=float(data["temperature"]),
                           min_words=int(data["min_words"]),
                           other_margin=_optional_float(data.get("other_margin"))),
                       identifier=label)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelIntegrityError(f"{where} is a damaged speaker-role model: "
                                      f"{type(exc).__name__}: {exc}") from exc

    def with_settings(self, settings: RoleSettings) -> RoleClassifier:
        """The same weights deciding speakers with other settings (the recipe tunes them)."""
        return RoleClassifier(list(self.vocabulary), self.weights, self.bias, settings,
                              self.identifier)

    def turn_log_probs(self, text: str) -> FloatArray:
        """Log-probabilities of (clinician, patient, other) for one turn's text (a read-only
        array)."""
        return self._scored(text)[0]

    def _score(self, text: str) -> tuple[FloatArray, int]:
        columns = known(turn_features(text), self.vocabulary)
        logits = self.bias.copy()
        if columns:
            index = np.fromiter(columns.keys(), dtype=np.int64, count=len(columns))
            values = np.fromiter(columns.values(), dtype=np.float64, count=len(columns))
            logits += values @ self.weights[index]
        log_probs = logits - _logsumexp(logits)
        log_probs.setflags(write=False)
        return log_probs, word_count(text)

    def turn(self, text: str) -> RoleGuess:
        """The likeliest role of one turn on its own, with its probability."""
        probs = np.exp(self.turn_log_probs(text))
        best = int(np.argmax(probs))
        return RoleGuess(ROLES[best], float(probs[best]))

    def speakers(self, turns: Sequence[tuple[str, str]]) -> dict[str, RoleGuess]:
        """A role per speaker from a conversation's ``(speaker id, text)`` turns in order; the
        speakers in order of first appearance. No turns: no speakers."""
        tallies: dict[str, _Tally] = {}
        for speaker, text in turns:
            tally = tallies.setdefault(speaker, _Tally(np.zeros(len(ROLES))))
            tally.add(*self._scored(text))
        if not tallies:
            return {}
        order = list(tallies)
        ranked = sorted(order, key=lambda s: (-tallies[s].words, order.index(s)))
        main = [speaker for speaker in ranked[:2] if tallies[speaker].words > 0] or ranked[:1]
        guesses = self._main_pair([(speaker, tallies[speaker]) for speaker in main])
        for speaker in ranked:
            if speaker not in guesses:
                guesses[speaker] = self._extra(tallies[speaker])
        return {speaker: guesses[speaker] for speaker in order}

    def _main_pair(self, main: Sequence[tuple[str, _Tally]]) -> dict[str, RoleGuess]:
        """Roles of the one or two main speakers: jointly one clinician and one patient (or
        the patient's side, see :meth:`_patient_side`)."""
        scale = self.settings.temperature
        if len(main) == 1:
            ((speaker, tally),) = main
            margin = scale * float(tally.evidence[CLINICIAN] - tally.evidence[PATIENT])
            role: Role = "clinician" if margin >= 0 else "patient"
            return {speaker: RoleGuess(role, _sigmoid(abs(margin)))}
        (_, a), (_, b) = main
        margin = scale * float((a.evidence[CLINICIAN] + b.evidence[PATIENT])
                               - (a.evidence[PATIENT] + b.evidence[CLINICIAN]))
        confidence = _sigmoid(abs(margin))
        (clinician, _), (patient, tally) = main if margin >= 0 else main[::-1]
        return {clinician: RoleGuess("clinician", confidence),
                patient: self._patient_side(tally, confidence)}

    def _patient_side(self, tally: _Tally, pair_confidence: float) -> RoleGuess:
        """The patient, or ``other`` (a relative speaking for the patient) when their turns
        read as other's by more than the model's ``other_margin`` per turn on average."""
        if self.settings.other_margin is None:
            return RoleGuess("patient", pair_confidence)
        excess = float(tally.evidence[OTHER] - tally.evidence[PATIENT]) \
            - tally.turns * self.settings.other_margin
        other = _sigmoid(self.settings.temperature * excess)
        if other > 0.5:
            return RoleGuess("other", pair_confidence * other)
        return RoleGuess("patient", pair_confidence * (1.0 - other))

    def _extra(self, tally: _Tally) -> RoleGuess:
        evidence = self.settings.temperature * tally.evidence
        clinician = float(np.exp(evidence[CLINICIAN] - _logsumexp(evidence)))
        if clinician > 0.5 and tally.words >= self.settings.min_words:
            return RoleGuess("clinician", clinician)
        return RoleGuess("other", 1.0 - clinician)


@dataclass
class _Tally:
    """What a speaker said, summed: turn log-probabilities, turns and words."""

    evidence: FloatArray
    turns: int = 0
    words: int = 0

    def add(self, log_probs: FloatArray, words: int) -> None:
        self.evidence = self.evidence + log_probs
        self.turns += 1
        self.words += words


def roles_from_languages(speaker_languages: Mapping[str, str], clinician_language: str,
                         patient_language: str) -> dict[str, RoleGuess]:
    """Roles in interpreter mode, where each party speaks their own language: a speaker of
    the clinician's language is the clinician, of the patient's the patient, of any other
    ``other`` (languages compared by their primary subtag, so ``en-GB`` is ``en``). The
    confidence is 1: it is that of the language decision, which the caller holds.

    Raises ValueError when the two parties' languages are the same (they cannot tell the
    parties apart) or a language is empty."""
    clinician, patient = _primary(clinician_language), _primary(patient_language)
    if clinician == patient:
        raise ValueError(f"the clinician's and the patient's language are both {clinician!r}: "
                         "languages cannot tell the two apart (use RoleClassifier.speakers)")
    roles: dict[str, RoleGuess] = {}
    for speaker, language in speaker_languages.items():
        spoken = _primary(language)
        role: Role = ("clinician" if spoken == clinician
                      else "patient" if spoken == patient else "other")
        roles[speaker] = RoleGuess(role, 1.0)
    return roles


def joined_turns(utterances: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(speaker, text) turns from utterances in order, consecutive ones of one speaker joined
    with a space: what :meth:`RoleClassifier.speakers` reads, from a transcript's segments
    (:func:`streaming.speakers.conversation_turns`) or a live session's finals."""
    turns: list[tuple[str, str]] = []
    for speaker, text in utterances:
        if turns and turns[-1][0] == speaker:
            turns[-1] = (speaker, f"{turns[-1][1]} {text}")
        else:
            turns.append((speaker, text))
    return turns


def _primary(language: str) -> str:
    primary = language.strip().replace("_", "-").split("-")[0].lower()
    if not primary:
        raise ValueError(f"not a language code: {language!r}")
    return primary


@functools.lru_cache(maxsize=4)
def _load(name: str) -> RoleClassifier:
    path = Path(name).expanduser()
    if path.is_dir():
        path = path / MODEL_FILE
    if path.is_file():
        return RoleClassifier.from_file(path)
    model = resolve_pinned(_pinned(name), hint="Train one with recipes/roles and pass its "
                                               "output folder, or restore the shipped model.")
    return RoleClassifier.from_file(model.weights[0], model.identifier)


def _pinned(name: str) -> PinnedModel:
    shipped = pinned_models("roles")
    if name not in shipped:
        raise ModelNotFoundError(name, [f"local path {name}: does not exist"],
                                 f"Pass a recipes/roles output or a shipped model: "
                                 f"{', '.join(sorted(shipped))}.")
    return shipped[name]


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _logsumexp(values: FloatArray) -> float:
    top = float(np.max(values))
    return top + math.log(float(np.sum(np.exp(values - top))))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
