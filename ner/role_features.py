"""What the speaker-role classifier (:mod:`ner.roles`) sees of one turn: its text normalised
to the form every source shares, and sparse named features of it.

Turns reach the classifier as ASR output, while its training dialogues are written text in
two styles: MTS-Dialog is cased ("What brings you in?"), ACI-Bench lower-cased and tokenised
("hi , martha . how are you ?"). :func:`normalise` lower-cases and joins punctuation back to
its word, so that neither casing nor tokenisation can carry the label. :func:`spoken_style`
also drops the punctuation, as a live transcript or lower-case Whisper output looks; the
recipe trains on both forms.

:func:`turn_features` is the one featurizer of training and inference: word unigrams and
bigrams (with a sentence-start mark) scaled to unit length, plus ``cue:`` features for what
separates a clinician from a patient whatever the topic (questions, second versus first
person, imperatives, hedges, length). The recipe chooses which n-grams the model keeps; the
cues are always there.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping

FEATURES_VERSION = "role-features/1"
"""Names this featurizer; a model records it and is refused by another version."""

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
_SPACE_BEFORE = re.compile(r"\s+([,.?!;:%)\]]|'(?:s|m|re|ve|ll|d)\b|n't\b)")
_SPACE_AFTER = re.compile(r"([(\[])\s+")
_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


START = "<s>"
"""The mark before each sentence's first word in bigrams ("<s> what", "<s> take")."""

QUESTION_OPENERS = _words(
    "what when where which who whom whose why how do does did is are was were have has had "
    "can could would will should any anything")
FIRST_SINGULAR = _words("i me my mine myself i'm i've i'd i'll")
FIRST_PLURAL = _words("we us our ours ourselves we're we've we'll we'd let's")
SECOND_PERSON = _words("you your yours yourself you're you've you'll you'd")
IMPERATIVES = _words(
    "take let let's tell go come lie sit stand breathe look follow try keep make call stop "
    "put push pull squeeze relax open close bend raise lift turn hold show continue start "
    "avoid use schedule")
HEDGES = _words("maybe probably guess think kind sort like um uh hmm mm really just "
                   "actually pretty")


def normalise(text: str) -> str:
    """``text`` lower-cased, with spaces before punctuation and clitics removed (``"i 'm
    fine ."`` → ``"i'm fine."``) and runs of white space made one space."""
    text = text.translate(_APOSTROPHES).lower()
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _SPACE_AFTER.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def spoken_style(text: str) -> str:
    """:func:`normalise`, without punctuation (apostrophes inside words are kept)."""
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", normalise(text))).strip()


def sentences(normalised: str) -> list[list[str]]:
    """The tokens of each sentence of a normalised text (split after ``.``, ``?``, ``!``)."""
    parts = (_TOKEN.findall(part) for part in _SENTENCE_END.split(normalised))
    return [tokens for tokens in parts if tokens]


def ngrams(sentence_tokens: list[list[str]]) -> set[str]:
    """The distinct word unigrams (``w:``) and bigrams (``b:``) of the sentences; every
    sentence starts with :data:`START`."""
    grams: set[str] = set()
    for tokens in sentence_tokens:
        grams.update(f"w:{token}" for token in tokens)
        padded = [START, *tokens]
        grams.update(f"b:{a} {b}" for a, b in itertools.pairwise(padded))
    return grams


def cues(normalised: str, sentence_tokens: list[list[str]]) -> dict[str, float]:
    """Topic-independent features of a turn, each roughly within 0..1."""
    tokens = [token for sentence in sentence_tokens for token in sentence]
    count = len(tokens)
    if not count:
        return {"cue:empty": 1.0}
    openers = [sentence[0] for sentence in sentence_tokens]

    def rate(words: frozenset[str]) -> float:
        return min(1.0, 4.0 * sum(token in words for token in tokens) / count)

    def opener_share(words: frozenset[str]) -> float:
        return sum(opener in words for opener in openers) / len(openers)

    questions = normalised.count("?")
    return {
        "cue:question": min(1.0, questions / len(sentence_tokens)),
        "cue:any_question": float(questions > 0),
        "cue:question_opener": opener_share(QUESTION_OPENERS),
        "cue:imperative_opener": opener_share(IMPERATIVES),
        "cue:first_singular": rate(FIRST_SINGULAR),
        "cue:first_plural": rate(FIRST_PLURAL),
        "cue:second_person": rate(SECOND_PERSON),
        "cue:hedges": rate(HEDGES),
        "cue:length": min(1.0, math.log1p(count) / 6.0),
        "cue:short": float(count <= 3),
        "cue:unpunctuated": float(not re.search(r"[.?!,]", normalised)),
    }


def turn_features(text: str) -> dict[str, float]:
    """The named features of one turn's text (as given: it is normalised here). The n-grams
    share unit length between them, whatever the turn's length; the cues come on top."""
    normalised = normalise(text)
    split = sentences(normalised)
    grams = ngrams(split)
    features: dict[str, float] = {}
    if grams:
        weight = 1.0 / math.sqrt(len(grams))
        features = dict.fromkeys(grams, weight)
    features.update(cues(normalised, split))
    return features


def word_count(text: str) -> int:
    """How many words a turn has (as :func:`turn_features` counts them)."""
    return len(_TOKEN.findall(normalise(text)))


def known(features: Mapping[str, float], vocabulary: Mapping[str, int]) -> dict[int, float]:
    """The features a model knows, by its column index (the others are dropped)."""
    return {vocabulary[name]: value for name, value in features.items() if name in vocabulary}
