"""The one interface every ASR backend implements; the pipeline and server only see this."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from speech.chunking import Span
from speech.options import TranscribeOptions
from speech.types import Segment, TranscriptionInfo


class ASRBackend(Protocol):
    """A loaded speech recogniser."""

    @property
    def identifier(self) -> str:
        """Which weights are loaded, precisely enough to reproduce a result."""
        ...

    @property
    def reproducibility_key(self) -> str:
        """The weights and numeric precision: what decides the text, whatever device runs it."""
        ...

    @property
    def multilingual(self) -> bool: ...

    def check(self, options: TranscribeOptions) -> None:
        """Raise InvalidOptionError for options this model cannot honour (an unknown
        language, translation with an English-only model), before any audio is decoded."""
        ...

    def transcribe(
        self, audio: np.ndarray, options: TranscribeOptions,
        speech: Sequence[Span] | None = None,
    ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """Recognise 16 kHz mono float32 ``audio``.

        ``speech``: the speech runs a VAD found in ``audio`` (``options.vad_filter``), when the
        caller ran it already, e.g. on a CPU worker of a cluster; None runs it here. A backend
        with its own voice activity detection may ignore them.
        Segments are produced lazily, in time order, so a caller can show them as they come.
        """
        ...

    def detect_language(self, audio: np.ndarray) -> list[tuple[str, float]]:
        """Language probabilities for the first 30 s of speech, most likely first."""
        ...
