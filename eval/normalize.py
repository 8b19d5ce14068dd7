"""One text normaliser per language, shared by WER, entity matching and term matching.

English uses Whisper's English normaliser (spelling variants, numbers, fillers); other languages
use Whisper's basic normaliser *without* stripping diacritics (Vietnamese tones carry meaning).
Transcriber tags such as ``<UNSURE>`` or ``<UNIN/>`` are removed first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from whisper_normalizer.basic import BasicTextNormalizer
from whisper_normalizer.english import EnglishTextNormalizer

_TAGS = re.compile(r"</?[A-Za-z_]+/?>")

CHARACTER_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "km"})
"""Languages written without spaces between words: scored by CER, not WER."""


@cache
def normalizer_for(language: str) -> Callable[[str], str]:
    """The normaliser for an ISO 639-1 code; its ``__name__`` goes into metric signatures."""
    inner: Callable[[str], str] = (
        EnglishTextNormalizer() if language == "en" else BasicTextNormalizer()
    )

    def normalize(text: str) -> str:
        text = _TAGS.sub(" ", text)
        return " ".join(inner(text).split())

    normalize.__name__ = "whisper-english" if language == "en" else "whisper-basic-keep-diacritics"
    return normalize
