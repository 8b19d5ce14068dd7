"""One text normaliser per language, shared by WER, entity matching and term matching.

English uses Whisper's English normaliser (spelling variants, numbers, fillers); other languages
use Whisper's basic normaliser *without* stripping diacritics (Vietnamese tones carry meaning).
Transcriber tags such as ``<UNSURE>`` or ``<UNIN/>`` are removed first, and a token left
without a letter or digit is dropped: Whisper's English normaliser keeps the last full stop
of a text that ends in an ellipsis ("and, um..." -> "and ."), which scored as an inserted
word wherever hypotheses are normalised one by one (per utterance, per live final).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from whisper_normalizer.basic import BasicTextNormalizer
from whisper_normalizer.english import EnglishTextNormalizer

_TAGS = re.compile(r"</?[A-Za-z_]+/?>")
_WORDLIKE = re.compile(r"[^\W_]")
"""A letter or digit (of any script)."""

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
        return " ".join(word for word in inner(text).split() if _WORDLIKE.search(word))

    normalize.__name__ = "whisper-english" if language == "en" else "whisper-basic-keep-diacritics"
    return normalize
