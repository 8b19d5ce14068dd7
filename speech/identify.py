"""Which of a conversation's languages a stretch of speech is in.

Whisper's language identification ranks every language it knows; an interpreted consultation
has two candidates (the physician's and the patient's language), and on a second or two of
speech Whisper favours English. :func:`pick_language` corrects for that; the live streams
(:mod:`speech.online`) and batch transcription (``TranscribeOptions.languages``) both use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from speech.chunking import Span

ENGLISH_DISCOUNT = 5.0
"""What English's probability is divided by when it competes with another candidate. Whisper
base on FLEURS turns (``benchmarks/language_id.py``, en against de/es/fr/pt, the choose split,
from the turn's onset) picked the wrong candidate for 8 of 40 turns after 1 s, 4 after 1.5 s
and 3 after 2 s, most of them other languages taken for English; dividing by 5 left 4, 3 and
1, and nothing wrong from 2.5 s on (8 and 10 gave errors at 2.5 s). On the report split: 6,
1, 1 without it, 1, 1, 1 with it (docs/live-long-turns.md, "Interpreter mode")."""


def pick_language(ranked: Sequence[tuple[str, float]], candidates: Sequence[str],
                  english_discount: float = ENGLISH_DISCOUNT) -> str:
    """The candidate identification picks from the model's language probabilities:
    English's divided by ``english_discount`` when it competes with another candidate; the
    first candidate if the model knows none."""
    discount = english_discount if "en" in candidates and len(set(candidates)) > 1 else 1.0
    allowed = [(lang, p / discount if lang == "en" else p) for lang, p in ranked
               if lang in candidates]
    return max(allowed, key=lambda weighed: weighed[1])[0] if allowed else candidates[0]


def language_stretches(runs: Sequence[Span], identify: Callable[[Span], str]
                       ) -> list[tuple[str, list[Span]]]:
    """``runs`` (speech, in order) each identified, consecutive runs of one language together:
    the stretches a bilingual recording is decoded in, each in its own language."""
    stretches: list[tuple[str, list[Span]]] = []
    for run in runs:
        language = identify(run)
        if stretches and stretches[-1][0] == language:
            stretches[-1][1].append(run)
        else:
            stretches.append((language, [run]))
    return stretches
