"""The results of speech recognition: words, segments and what was decided about the audio.

All times are in seconds on the audio clock (0 = start of the recording).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Task = Literal["transcribe", "translate"]
SENTENCE_END = re.compile(r"[.!?。！？…]['\"”)\]]*$")
TRAILING_OFF = re.compile(r"(\.\.|…)['\"”)\]]*$")
"""An ellipsis: Whisper's mark of a hesitation, not of a sentence's end."""


def ends_sentence(text: str) -> bool:
    """``text`` ends with sentence punctuation (``.``, ``?``, ``!``), not with an ellipsis."""
    text = text.strip()
    return SENTENCE_END.search(text) is not None and not TRAILING_OFF.search(text)


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing (seconds) and the model's confidence (0–1)."""

    start: float
    end: float
    text: str
    probability: float

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"word ends ({self.end}) before it starts ({self.start})")

    @property
    def ends_sentence(self) -> bool:
        """The word ends a sentence (:func:`ends_sentence`)."""
        return ends_sentence(self.text)


@dataclass(frozen=True)
class Segment:
    """A stretch of speech and its text.

    ``is_final`` is False only for streaming partials, whose text may still change.
    """

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    language: str | None = None
    is_final: bool = True
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    speaker: str | None = None
    """Who said it (``S1``, ``S2`` …) when the audio was diarized; None otherwise."""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"segment ends ({self.end}) before it starts ({self.start})")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["words"] = [asdict(w) for w in self.words]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        words = tuple(Word(**w) for w in data.get("words", ()))
        return cls(**{**data, "words": words})


@dataclass(frozen=True)
class TranscriptionInfo:
    """What the recogniser decided about a whole recording."""

    language: str
    language_probability: float
    duration: float
    duration_after_vad: float
    task: Task
    model: str
    settings: dict[str, Any] = field(default_factory=dict)
