"""Incremental recognition of a live stream: VAD-gated utterances, LocalAgreement-2, finals.

A stream is cut into *utterances* by :class:`~speech.vad.StreamingVAD`; silence and noise the
VAD rejects never reach the recogniser, so they produce no text. While an utterance is open,
its audio so far is decoded again every ``partial_interval`` seconds of new audio (a *partial*
decode, greedy). The LocalAgreement-2 policy commits the longest common prefix of the last two
hypotheses: committed words are shown as stable and do not change in later partials.

An utterance ends when the VAD hears ``min_silence_ms`` of silence (or the stream stops): its
whole audio is decoded once more as a *final* decode (``beam_size``, 5 by default, with
Whisper's temperature fallback and its full 30 s window), and that text is the utterance's
*final*. Once the VAD has heard ``early_final`` (0.2 s) of that silence, the buffer is decoded
as a final is, at once (an *early final*): if the silence goes on to end the utterance, that
decode is its final, begun 0.3 s sooner and never held up by a partial in flight; if the speaker
goes on, it looks for a sentence end at the pause. A speaker does not wait for the end of a turn
to finish a sentence, and neither do finals: as soon as LocalAgreement has committed a word that
ends a sentence (``.``, ``?``, ``!``; not an ellipsis), the word after it has begun
``sentence_gap`` later and the sentence has ``min_sentence`` seconds of audio (or, with
``pause_split``, a committed word followed by a pause of that length), the audio up to the gap
between those words is decoded as a final of its own and the buffer is trimmed there; the rest
of the turn goes on as the next utterance. LocalAgreement stalls behind a word the partials keep
writing two ways, so a sentence end of the latest partial that falls in a pause the VAD heard
inside the turn (``pause_end``) ends a final too, cut at the pause's middle; a pause
``long_sentence`` seconds or more into the buffer does, punctuated or not. The partial that
looks for that sentence end, ``AFTER_PAUSE`` after speech resumed, is itself decoded as a final
is (``final_at_pause``): where it ends a sentence, its words before the cut are the final, one
decode sooner. The text is a final decode's, not the committed partial words' (greedy on a short
context: on long turns they cost several WER points). With ``prompt_chars``, each final is
decoded with the stream's last finals as its prompt (off by default: it makes tiny.en invent
text); instead a final's decode first hears ``final_context`` seconds of the conversation
before its utterance (the speech of the finals before it, the silences between them shortened
to ``context_gap``) and drops the words heard there (and a word it heard across the cut that
repeats the last word of the final before; but not the utterance's own first words, which
Whisper may time before the cut: ``edges``). This also keeps the work per decode bounded
over a 30-minute monologue. An utterance that reaches ``max_utterance`` seconds without such
a boundary is cut: it is decoded as a final and the buffer restarts at the start of the last
segment Whisper found in it, which is decoded again with what follows.

:class:`OnlineTranscriber` holds one stream's state and never calls the model itself: it hands
out :class:`DecodeJob` s (:meth:`~OnlineTranscriber.next_job`), and :func:`decode_jobs` runs a
list of jobs from any number of streams, batched where their settings agree. The server's
scheduler decides whose jobs run when.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Protocol

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.identify import ENGLISH_DISCOUNT, pick_language
from speech.options import TranscribeOptions
from speech.types import Segment, Task, Word
from speech.utterances import Utterance, UtteranceGate
from speech.vad import VadSettings

JobKind = Literal["partial", "final"]
PARTIAL_CONTEXT = 1000
"""Frames (10 s) partials are encoded with, at least (Whisper's window is 3000)."""
HURRIED_FINAL_CONTEXT = 2000
"""Frames (20 s) finals are encoded with when the server is behind (else Whisper's 3000)."""
LONGEST_WINDOW = 28.0
"""Seconds of audio a final decodes at most, its context included."""
EDGE = 0.5
"""Seconds before its cut within which a final's decode may time the utterance's first words
(see :func:`_after`)."""
PROMPT_KEPT = 800
"""Characters of the finals so far kept for prompts (the most ``prompt_chars`` allows)."""
SPANS_KEPT = 64
"""Spans of finals kept for ``context_gap``."""
CONTEXT_REACH = 60.0
"""Seconds before an utterance that ``context_gap`` looks back for speech, at most."""
AFTER_PAUSE = 0.15
"""Seconds of speech after a pause before the partial that looks for a sentence end there
(its next word must be heard)."""
IDENTIFY_AFTER = 3.0
"""Seconds of a turn from which a partial identifies its language, once (interpreter mode):
the turn's finals are then decoded in that language and identify nothing themselves, which
takes an encoder pass off their path. Until then each final identifies it on the turn's audio
it hears, and settles it only from this long (a sentence cut from a turn after 2 s does not).
Whisper base on real read speech (FLEURS, ``benchmarks/language_id.py``), en against
de/es/fr/pt: after 2 s from the turn's onset 3 of 40 turns of the choose split and 1 of 40
of the report split were given the wrong one (all Portuguese, with up to a 0.95 share of the
two; with ``english_discount`` 1 and 1), after 2.5 s and more none."""
GUESS_AGAIN = 1.5
"""Seconds of a turn at which a partial identifies its language again, until
``IDENTIFY_AFTER`` settles it (interpreter mode): the turn's first partial guesses it on well
under a second, and the partials after it are decoded (and shown, the web page puts them in
that language's column) in that guess. Whisper base on FLEURS turns (``language_id.py``):
14 of 80 wrong after 1 s, 5 of 80 after 1.5 s; with ``english_discount`` 5 and 4."""
AGREED_END = 0.25
"""Seconds two hypotheses' sentence ends may differ by and still be the same end."""
CUT_MARGIN = 0.2
"""Seconds after a sentence's last word at most where its audio is cut (half the gap to the
next word, when that is shorter): word times are rough, and a cut must not clip the word."""
WindowResult = tuple[list[Segment], str]
"""What decoding one window gives: its segments (times relative to the window) and language."""


@dataclass(frozen=True)
class StreamOptions:
    """Settings of one live stream."""

    language: str | None = None
    """The language spoken, or None to identify it for each utterance."""
    languages: tuple[str, ...] = ()
    """With ``language`` None: the languages identification may choose from (interpreter mode:
    the physician's and the patient's). Empty: any language the model knows."""
    english_discount: float = ENGLISH_DISCOUNT
    """With English among several ``languages``: English's probability is divided by this
    before identification picks one of them (Whisper favours English on a second or two of
    speech; :data:`speech.identify.ENGLISH_DISCOUNT`). 1 turns it off."""
    first_guess: float = 0.75
    """Seconds of an utterance its first partial waits for when the language is identified
    (interpreter mode): that partial guesses the language, and the partials after it are
    shown in that guess until ``GUESS_AGAIN``. On half a second Whisper base cannot tell
    (FLEURS turns, choose split, en against de/es/fr/pt: 19 of 40 wrong, 10 at best whatever
    ``english_discount``); on 0.75 s 5 with the discount, on 1 s 4."""
    task: Task = "transcribe"
    beam_size: int = 5
    """Beam width of final decodes; partials are greedy. 1 (greedy, with the temperature
    fallback of ``final_fallback``) costs 0.78–0.84 of beam 5 and was as accurate on the choose
    set (CAR0001 finals WER 12.7 against 13.0, D2N027 12.7 against 13.9, simulations), but on
    the synthetic monologue of ``tests/test_live_long_turns.py`` it wrote "a sprint" for
    "aspirin" and "dog" for "daughter" (WER 17.7 against 15.2): kept at 5 for drug names."""
    partial_interval: float = 0.5
    """Seconds of new audio before an open utterance is decoded again."""
    min_silence_ms: int = 500
    """Silence that ends an utterance."""
    vad_threshold: float = 0.5
    trim_after: float = 0.0
    """Seconds an open utterance must have before its committed sentences become finals of
    their own (0: as soon as they are committed)."""
    sentence_gap: float = 0.05
    """A committed sentence end ends a final only when the next word starts this many seconds
    after it (by Whisper's word times): a short-context partial puts a full stop wherever its
    audio stops, and a cut where the speaker did not pause can clip a word."""
    min_sentence: float = 1.5
    """Seconds of audio a sentence's final has at least (a shorter one waits to join the
    next): Whisper invents words on very short windows."""
    agreed_ends: bool = False
    """Also end a final at a sentence end that the last two partials agree on in time though
    a word before it differs (LocalAgreement stalls at such a word for the rest of the turn).
    Off: on the long-turn conversation it cut sentence lag p95 from 13.6 to 5.9 s but cost
    3 WER points (docs/live-long-turns.md)."""
    pause_end: float | None = 0.15
    """A sentence end in the latest partial (whether committed or not) that falls in a pause
    the VAD heard inside the turn, of at least this many seconds, ends a final too; the cut is
    the middle of the pause, so it never clips a word (None: only committed sentence ends).
    LocalAgreement alone stalls behind one word the partials keep writing two ways."""
    long_sentence: float | None = 8.0
    """Seconds of speech before a pause from which the pause rule (``pause_end``) cuts there
    whether or not the latest partial puts a sentence end there (None: only at sentence ends):
    Whisper leaves some sentence ends unpunctuated, and the sentences before such an end waited
    for the next one it did punctuate. Chosen on D2N027 (synthetic long turns: sentence lag
    p95 / max, WER) and CAR0001 (final lag max, WER), CPU-clock simulation, one process each:
    None 6.28 / 14.18 s, 15.1 and 5.16 s, 13.2; 8 s 5.49 / 6.05 s, 14.6 and 4.47 s, 13.3; 6 s
    5.11 / 5.51 s, 18.1 and 3.54 s, 13.8 (it cut sentences of real speech at a pause)."""
    pause_split: float | None = None
    """A committed word followed by a gap of this many seconds ends a final too, even without
    sentence punctuation (None: only sentence ends do); below ``min_silence_ms``."""
    sentence_decode: bool = True
    """A sentence's final is a final decode of its audio (True), or its committed
    partial words as they stand (False: no extra decode, less accurate)."""
    prompt_chars: int = 0
    """Characters of the stream's last finals given to each final decode as its prompt
    (after ``initial_prompt``); 0: none. Off by default: with tiny.en a prompt makes short
    finals invent text (loops of "see you next time") and costs WER (docs/live-long-turns.md)."""
    final_context: float = 5.0
    """Seconds of the stream's audio before an utterance decoded with it in its final (the
    words heard there are dropped): Whisper hears a short answer in its conversation, as batch
    decoding does, instead of alone (0: the utterance's audio alone). In interpreter mode
    (language identified per turn) only audio of the same turn is heard: what came before it
    may be the other party's language. On the OSCE interview
    CAR0001, 5 s took the finals' WER from 19.9 to 13.9 (batch 11.4; docs/live-long-turns.md)."""
    final_ahead: float = 1.0
    """Seconds of the buffer held after a sentence's cut inside a turn (committed or found at
    a pause) that the sentence's final hears after its own audio (the words centred there
    are dropped: they are the next final's). Whisper ends a window's last sentence worse than
    one it hears go on; the partial that found the sentence end has already heard this audio,
    so the final waits for nothing (its window is longer: p95 lag moved by 0.00-0.02 s).
    0: the final hears its audio up to the cut. On the choose set (tiny.en, model clock) 1 s
    took the finals' WER on GAS0001 from 23.9 to 22.2 and on CAR0001 from 14.5 to 14.2, and
    on the first 148 s of D2N027 from 12.4 to 13.2 (3 words), with the same lag; 2 s was no
    better (22.7, 14.2, 13.2)."""
    sentence_wait: float = 0.0
    """Seconds of the buffer after a sentence's cut inside a turn that its final waits for,
    so that its decode hears them (``final_ahead``, which bounds it): a sentence found at a
    pause by a decode that heard less after the cut (``final_at_pause``) is decoded again once
    the buffer holds them, instead of taking that decode's words at once, and a committed
    sentence's final waits for them too. 0: no wait. On the choose set (model clock) 0.5 s
    took the finals' WER of CAR0001 from 14.2 to 13.3 and of D2N027 from 12.4 to 11.2, not
    GAS0001's (23.1 to 23.0), and put D2N027's median final 0.7 s later and every p95 later
    (docs/live-long-turns.md): off unless a client asks."""
    context_gap: float | None = 0.3
    """Seconds of each silence between earlier finals that a final's context keeps (longer
    silences are shortened to this), so that its ``final_context`` seconds hold the
    conversation's last speech, as a batch decode's window of VAD-filtered speech does (None:
    the audio before the utterance as it came, silences whole). Chosen on the choose set
    (model clock, finals WER against batch): GAS0001 27.1 with None, 24.3 with 0.3 (an
    earlier run 27.0 and 24.9; batch 17.9); CAR0001 13.8 and 14.5 (batch 13.0); D2N027 12.9
    and 12.7 (batch 9.7); final lag unchanged."""
    edges: bool = True
    """Keep the first words of an utterance that a final's decode timed before its cut
    (:func:`_after`): a deleted first word is often a question's or a negation's ("Have you
    had any vomiting?", "I don't think so.", "haven't been able to"). On GAS0001 (choose
    set) about 17 of its 158 finals regained their first words and about 10 gained a word of
    the final before, heard again in another spelling ("achy" after "a key"); WER moved by
    -0.2 to +0.2 points on the choose set."""
    final_fallback: bool = True
    """Finals are decoded with Whisper's temperature fallback (decoded again, sampling, when
    the text repeats itself or its log-probability is low); False: once, at temperature 0.
    Kept: without it, on the OSCE interview CAR0001 the finals' WER went from 12.9 to 16.2 for
    no gain in lag (CPU-clock simulation), though on the synthetic long turns of D2N027 it cut
    sentence lag p95 from 4.8 to 3.7 s at equal WER."""
    trailing_hold: float = 0.0
    """Seconds of silence an utterance whose latest partial trails off (its last word has no
    sentence punctuation: "I do take...") stays open after the VAD ended it. A patient who
    hesitates that long and goes on gets one final for the whole sentence, as batch decoding
    hears it, instead of a final that Whisper ends with an invented continuation; one who does
    not gets the final where the VAD ended it, this much later. 0: off. Off by default: on
    CAR0001 (model clock) 1 s took the finals' WER from 13.7 to 13.2 (batch 11.4) and the
    final lag p95 / max from 1.66 / 2.80 to 1.94 / 3.46 s."""
    final_at_pause: bool = True
    """The partial that looks for a sentence end at a pause (``pause_end``) is decoded as a
    final is (``final_context``, ``beam_size``, fallback); where it ends a sentence,
    its words up to the cut are that sentence's final, with no decode of its own after it.
    The final comes a partial's decode sooner; each pause costs a final's decode instead of a
    partial's. False: the partial is greedy, and a sentence it ends is decoded again."""
    early_final: float | None = 0.2
    """Seconds of silence at the end of an open utterance from which its buffer is decoded
    once more, as a final is (an *early final*), and no partial starts. Should the VAD end the
    utterance in that silence (``min_silence_ms``) while the decode runs, it is the
    utterance's final: the final's decode began this long after the speech ended instead of
    ``min_silence_ms`` after, and no partial in flight holds it up. Should the speaker go on,
    it is the partial that looks for a sentence end at the pause (``final_at_pause``).
    None: partials go on through the silence, and the final is decoded once the VAD has
    ended the utterance. Chosen on the choose set (model clock, p50 / p95 final lag, WER):
    D2N027 0.86 / 1.96 s, 11.4 without it, 0.77 / 1.92 s, 10.9 with 0.2 s, 0.68 / 1.06 s, 11.9
    with 0.1 s (sentence lag p95 2.31, 2.21, 3.08 s); CAR0001 0.79 / 1.66 s, 13.0 without,
    0.50 / 1.40 s, 14.0 with 0.2 s (WER moved by -1.3 to +1.2 between runs;
    docs/live-long-turns.md)."""
    final_window: float = 30.0
    """Seconds the encoder hears in a final decode: its audio (context included) and the
    padding up to this length (30: Whisper's whole window; shorter is cheaper to encode, down
    to the audio's own length, and Whisper invents more on short padded windows). When the
    server is behind, finals hear 20 s at most (``HURRIED_FINAL_CONTEXT``)."""
    max_utterance: float = 25.0
    """Seconds after which an utterance is cut even without a committed sentence end."""
    vocabulary: tuple[str, ...] = ()
    initial_prompt: str | None = None

    def __post_init__(self) -> None:
        if not 0.1 <= self.partial_interval <= 10:
            raise ValueError("partial_interval must be between 0.1 and 10 seconds")
        if not 100 <= self.min_silence_ms <= 5000:
            raise ValueError("min_silence_ms must be between 100 and 5000")
        if not 0 <= self.trim_after < self.max_utterance <= 28:
            raise ValueError("need 0 <= trim_after < max_utterance <= 28 seconds "
                             "(Whisper hears 30 s at a time)")
        if self.long_sentence is not None and self.long_sentence < self.min_sentence:
            raise ValueError("long_sentence must be at least min_sentence seconds (from "
                             "max_utterance on it never applies: the utterance is cut first)")
        silence = self.min_silence_ms / 1000
        for name, least in (("pause_split", 0.05), ("pause_end", 0.03), ("sentence_gap", 0.0),
                            ("early_final", 0.0)):
            value = getattr(self, name)
            if value is not None and not least <= value < silence:
                raise ValueError(f"{name} must be at least {least:g} s and shorter than "
                                 "min_silence_ms (that much silence ends the utterance)")
        if not 0 <= self.min_sentence < self.max_utterance:
            raise ValueError("need 0 <= min_sentence < max_utterance seconds")
        for name, low, high in (("final_context", 0, 10), ("final_ahead", 0, 5),
                                ("sentence_wait", 0, 5),
                                ("trailing_hold", 0, 5), ("final_window", 10, 30),
                                ("first_guess", 0, 3)):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be between {low} and {high} seconds")
        if self.sentence_wait > self.final_ahead:
            raise ValueError("sentence_wait must not exceed final_ahead (a final hears no more "
                             "after its cut)")
        if self.context_gap is not None and not 0 <= self.context_gap <= 2:
            raise ValueError("context_gap must be between 0 and 2 seconds")
        self._check_counts()

    def _check_counts(self) -> None:
        if not 0 <= self.prompt_chars <= 800:
            raise ValueError("prompt_chars must be between 0 and 800")
        if self.beam_size < 1:
            raise ValueError("beam_size must be at least 1")
        if self.english_discount <= 0:
            raise ValueError("english_discount must be positive (1: none)")

    @property
    def identifies(self) -> bool:
        """Each turn's language is identified (no ``language`` and not a single one of
        ``languages``: interpreter mode, or any language): a turn's finals then hear only its
        own audio before them, which is also what identifies it."""
        return self.language is None and len(self.languages) != 1

    def vad_settings(self) -> VadSettings:
        """The VAD that cuts a stream with these options into utterances."""
        return VadSettings(threshold=self.vad_threshold, min_silence_ms=self.min_silence_ms)

    def decode_options(self, kind: JobKind, language: str | None,
                       context: str = "") -> TranscribeOptions:
        """How a job is decoded; ``context``: the text before it (finals only: partials of
        several streams batch together only when their options agree)."""
        prompt = " ".join(p for p in (self.initial_prompt, context if kind == "final" else "")
                          if p) or None
        return TranscribeOptions(
            language=language, task=self.task,
            beam_size=self.beam_size if kind == "final" else 1,
            word_timestamps=True, vad_filter=False, vocabulary=self.vocabulary,
            initial_prompt=prompt, condition_on_previous_text=False)


def parse_stream_options(text: str, **base: Any) -> StreamOptions:
    """StreamOptions from ``key=value,...`` (e.g. ``trim_after=10,sentence_decode=0``; ``none``
    for None), over ``base``: how benchmarks take a policy on their command line."""
    kinds = {f.name: str(f.type) for f in fields(StreamOptions)}
    values = dict(base)
    for item in filter(None, text.split(",")):
        key, _, raw = item.partition("=")
        if key not in kinds:
            raise ValueError(f"unknown stream option {key!r}; known: {', '.join(kinds)}")
        if raw.lower() == "none":
            values[key] = None
        elif "bool" in kinds[key]:
            values[key] = raw.lower() not in ("0", "false", "no")
        elif "int" in kinds[key] and "float" not in kinds[key]:
            values[key] = int(raw)
        elif "float" in kinds[key]:
            values[key] = float(raw)
        else:
            values[key] = raw
    return StreamOptions(**values)


@dataclass(frozen=True)
class StreamUpdate:
    """What a decode changed: a partial or final hypothesis of one utterance."""

    utterance: int
    """Number of the utterance in the stream (0, 1, …); a cut utterance continues as the next."""
    segment: Segment
    """Times on the stream's clock; ``is_final`` False for partials."""
    stable: str = ""
    """For partials: the committed prefix of ``segment.text``, which later partials keep."""


@dataclass
class _Utterance(Utterance):
    language: str | None = None
    previous: list[Word] = field(default_factory=list)
    committed: list[Word] = field(default_factory=list)
    decoded: int = 0
    """Samples of the buffer the last partial decode saw."""
    boundary: int | None = None
    """Stream sample where a committed sentence ends: the buffer up to it awaits its final."""
    onset: int = 0
    """Stream sample where the VAD heard the turn begin (``start`` moves on as it is cut)."""
    resumed: int | None = None
    """Stream sample where speech resumed after such a pause, heard since the last partial
    decode: a partial goes ``AFTER_PAUSE`` seconds later, not ``partial_interval``."""
    held: int | None = None
    """Stream sample where the VAD ended it while it is kept open (``trailing_hold``)."""
    early: int | None = None
    """Stream sample where the silence began in which its early final (``early_final``) was
    decoded: one per silence."""
    kept: tuple[DecodeJob, WindowResult] | None = None
    """An early final that came back while the silence it was decoded in went on, and its
    result: kept for when that silence ends the utterance (then it is the final) or the
    speaker goes on (then it is the partial that looks for a sentence end at the pause)."""
    searched: int | None = None
    """Stream sample where the pause began whose sentence end an early final looked for (the
    speaker went on while it was decoded): the partial after that pause need not."""
    settled: str | None = None
    """The language this turn was identified in, on ``IDENTIFY_AFTER`` seconds or more of it:
    its finals are decoded in it without identifying it again."""

    def trim(self, sample: int) -> None:
        """Drop the buffer before stream sample ``sample``; the words heard after it stay as
        the baseline (and committed prefix) of the next partials."""
        cut = max(0, min(sample - self.start, self.samples))
        rest = self.audio()[cut:]
        self.chunks = [rest]
        self.samples = len(rest)
        self.start += cut
        after = self.start / SAMPLE_RATE - 0.01
        committed = [w for w in self.committed if w.start >= after]
        previous = [w for w in self.previous if w.start >= after]
        if [_key(w) for w in committed] != [_key(w) for w in previous[:len(committed)]]:
            committed = []
        self.previous, self.committed, self.decoded = previous, committed, 0
        self.pauses = [p for p in self.pauses if p[0] >= self.start]
        self.boundary, self.kept = None, None


@dataclass
class DecodeJob:
    """One window of one stream to recognise."""

    stream: OnlineTranscriber
    kind: JobKind
    utterance: _Utterance
    audio: np.ndarray
    options: TranscribeOptions
    candidates: tuple[str, ...] = ()
    """Languages to choose from when ``options.language`` is None (empty: any)."""
    sentence: bool = False
    """A final of the audio up to a committed sentence end (the rest of the turn goes on)."""
    context: int = 0
    """Samples of the stream before the utterance that ``audio`` begins with (finals with
    ``final_context``): heard for context, their words are not the utterance's."""
    ahead: int = 0
    """Samples of the utterance after the sentence's cut that ``audio`` ends with (a
    sentence's final with ``final_ahead``): heard for context, their words are the next
    final's."""
    thorough: bool = False
    """A partial decoded as a final is (``final_at_pause``): where it finds a sentence end,
    its words before it are that sentence's final."""
    early: int | None = None
    """For an early final (``early_final``, also ``thorough``): the stream sample where the
    silence it was decoded in began. If that silence closes the utterance, it is the final."""
    decided: WindowResult | None = None
    """The result, known already (a kept early final, :attr:`_Utterance.kept`): decoding
    returns it without running the model."""

    @property
    def as_final(self) -> bool:
        """Decoded as a final (``beam_size``, fallback, ``final_window``), whatever its kind."""
        return self.kind == "final" or self.thorough

    @property
    def samples(self) -> int:
        """Samples of the utterance's own audio in the job (up to the cut, for a sentence)."""
        return len(self.audio) - self.context - self.ahead

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE


class Recogniser(Protocol):
    """What :func:`decode_jobs` needs from a backend."""

    @property
    def multilingual(self) -> bool: ...

    def detect_language(self, audio: np.ndarray, *,
                        vad_filter: bool = True) -> list[tuple[str, float]]: ...

    def transcribe_windows(self, windows: Sequence[np.ndarray], options: TranscribeOptions,
                           *, fallback: bool = True, context: int | None = None
                           ) -> list[list[Segment]]: ...


class OnlineTranscriber(UtteranceGate):
    """The recognition state of one live stream (not thread-safe: one caller at a time)."""

    def __init__(self, options: StreamOptions | None = None) -> None:
        self.options = options or StreamOptions()
        super().__init__(self.options.vad_settings(), self.options.pause_end)
        self._open: _Utterance | None
        self._closed: deque[_Utterance]  # type: ignore[assignment]
        self._said = ""
        """The end of the stream's finals so far: the prompt of the next final decode."""
        self._spans: deque[tuple[int, int]] = deque(maxlen=SPANS_KEPT)
        """Where the stream's last finals were (stream samples): ``context_gap``'s speech."""
        reach = self.options.final_context + (CONTEXT_REACH if self.options.context_gap
                                              is not None else 0.0)
        self._recent = RecentAudio(round((self.options.max_utterance + reach + 1) * SAMPLE_RATE)
                                   if self.options.final_context else 0)

    def accept(self, samples: np.ndarray) -> None:
        super().accept(samples)
        self._recent.add(samples)
        utterance = self._open
        if utterance is not None and utterance.held is not None and \
                self.received - utterance.held >= self.options.trailing_hold * SAMPLE_RATE:
            self._release(utterance)  # nobody went on: it ends where the VAD ended it

    def finish(self) -> None:
        if self._open is not None and self._open.held is not None:
            self._release(self._open)
        super().finish()

    def _release(self, utterance: _Utterance) -> None:
        """Close a held utterance (``trailing_hold``) where the VAD ended it."""
        assert utterance.held is not None
        held, utterance.held = utterance.held, None
        super()._close(held)

    def _close(self, end: int) -> None:
        utterance = self._open
        if utterance is not None and not self.finished and self.options.trailing_hold \
                and utterance.held is None and utterance.previous \
                and not utterance.previous[-1].ends_sentence and end < self.received:
            utterance.held = end  # it trails off: wait for the speaker to go on
            return
        super()._close(end)

    def _open_utterance(self, onset: int) -> None:
        utterance = self._open
        if utterance is not None and utterance.held is not None:
            held, utterance.held, utterance.silent_from = utterance.held, None, None
            self._paused(held, onset)  # the speaker went on: a pause inside the turn
            return
        super()._open_utterance(onset)

    def _new_utterance(self, number: int, onset: int) -> _Utterance:
        return _Utterance(number, onset, onset=onset)

    def _paused(self, start: int, end: int) -> bool:
        if not super()._paused(start, end):
            return False
        assert self._open is not None
        self._open.resumed = end  # decode soon: a sentence may have ended there
        return True

    # -- work out ---------------------------------------------------------------------------
    @property
    def pending_final(self) -> bool:
        """An utterance is waiting for its final decode (finals go before partials)."""
        return bool(self._closed) or (
            self._open is not None
            and (self._sentence_due(self._open)
                 or self._open.samples / SAMPLE_RATE >= self.options.max_utterance))

    @property
    def awaiting_words(self) -> bool:
        """An open utterance has not been decoded yet (its first partial goes first)."""
        return self._open is not None and self._open.decoded == 0 and not self._busy

    def next_job(self) -> DecodeJob | None:
        """The decode this stream needs next, or None (also while one is in flight)."""
        if self._busy:
            return None
        if self._closed:
            job = self._reuse(self._closed[0], "final") or self._job("final", self._closed[0])
        elif self._open is not None and self._sentence_due(self._open):
            assert self._open.boundary is not None
            job = self._job("final", self._open, self._open.boundary)
        elif self._open is not None and self._needs_partial(self._open):
            utterance = self._open
            if utterance.samples / SAMPLE_RATE >= self.options.max_utterance:
                job = self._job("final", utterance)
            elif (kept := self._reuse(utterance, "partial")) is not None:
                job = kept
                utterance.resumed = None
            else:
                early = self._early(utterance)
                job = self._job("partial", utterance,
                                thorough=early is not None or self._at_pause(utterance))
                job.early = utterance.early = early
                utterance.decoded, utterance.resumed = utterance.samples, None
        else:
            return None
        self._busy = True
        return job

    def _sentence_due(self, utterance: _Utterance) -> bool:
        """``utterance`` has a sentence's cut whose final is due: the buffer holds
        ``sentence_wait`` seconds after it."""
        return utterance.boundary is not None and not self._should_wait(
            utterance.start + utterance.samples - utterance.boundary)

    def _should_wait(self, heard: int) -> bool:
        """A sentence's final whose audio would hold ``heard`` samples after its cut waits
        for more (``sentence_wait``)."""
        wait = self.options.sentence_wait
        return bool(wait) and heard < round(wait * SAMPLE_RATE)

    def _reuse(self, utterance: _Utterance, kind: JobKind) -> DecodeJob | None:
        """The kept early final of ``utterance`` as its ``final`` job or as the ``partial``
        after the pause (:meth:`_kept_fits`), its result decided; None when it is neither."""
        if utterance.kept is None or not self._kept_fits(utterance, kind):
            return None
        job, result = utterance.kept
        utterance.kept = None
        return replace(job, kind=kind, decided=result)

    def _kept_fits(self, utterance: _Utterance, kind: JobKind) -> bool:
        """``utterance``'s kept early final is its ``final`` (the silence it was decoded in
        ended the utterance) or, with ``final_at_pause``, the ``partial`` after the pause
        (the speaker went on after that silence)."""
        if utterance.kept is None:
            return False
        job = utterance.kept[0]
        if kind == "final":
            return self._ended_early(job)
        return self.options.final_at_pause and _last_pause_began(utterance, job.early)

    def _needs_partial(self, utterance: _Utterance) -> bool:
        if utterance.held is not None:
            return False  # silence since the VAD ended it: nothing new to hear
        if self._kept_fits(utterance, "partial"):
            return True  # the speaker went on: the kept early final looks at the pause
        if self._quiet() is not None:
            # An early final is due in this silence, or was decoded in it: nothing new since.
            return self._early(utterance) is not None
        if self.options.identifies and utterance.language is None \
                and utterance.samples < self.options.first_guess * SAMPLE_RATE:
            return False  # too little of it to guess its language on
        fresh = (utterance.samples - utterance.decoded) / SAMPLE_RATE
        resumed = utterance.resumed
        return fresh >= self.options.partial_interval or (
            resumed is not None
            and utterance.start + utterance.samples >= resumed + AFTER_PAUSE * SAMPLE_RATE)

    def _quiet(self) -> int | None:
        """Where the silence at the end of the open utterance began, once it has lasted
        ``early_final`` seconds (the utterance may be ending); else None."""
        wait, since = self.options.early_final, self.vad.silent_since
        if wait is None or since is None or self.vad.position - since < wait * SAMPLE_RATE:
            return None
        return since

    def _early(self, utterance: _Utterance) -> int | None:
        """Where the silence began that ``utterance``'s early final is due in (not decoded
        yet), or None."""
        since = self._quiet()
        return since if since is not None and since > utterance.start \
            and utterance.early != since else None

    def _at_pause(self, utterance: _Utterance) -> bool:
        """The next partial looks for a sentence end at a pause and is decoded as a final
        (``final_at_pause``)."""
        options = self.options
        if _last_pause_began(utterance, utterance.searched):
            return False  # the early final decoded in this pause looked for a sentence end
        return (options.final_at_pause and options.sentence_decode
                and options.pause_end is not None and utterance.resumed is not None
                and utterance.samples / SAMPLE_RATE >= max(options.min_sentence,
                                                           options.trim_after))

    def _job(self, kind: JobKind, utterance: _Utterance, until: int | None = None,
             thorough: bool = False) -> DecodeJob:
        """A job for ``utterance``'s buffer, or for its audio up to stream sample ``until``
        (a sentence's final); ``thorough``: a partial decoded as a final."""
        language = self.options.language or utterance.language
        candidates = self.options.languages
        final = kind == "final" or thorough
        if self.options.identifies:
            if utterance.settled is not None:
                language = utterance.settled
            elif final or utterance.samples >= IDENTIFY_AFTER * SAMPLE_RATE \
                    or utterance.decoded < GUESS_AGAIN * SAMPLE_RATE <= utterance.samples:
                language = None  # identify it on the whole buffer
        if self.options.language is None and len(candidates) == 1:
            language = candidates[0]
        limit = None if until is None else until - utterance.start
        context = self._said[-self.options.prompt_chars:] if self.options.prompt_chars else ""
        if context and len(context) < len(self._said):
            context = context.partition(" ")[2]  # whole words only
        audio = utterance.audio(limit)
        ahead = audio[:0]
        if limit is not None and self.options.final_ahead:
            # At most LONGEST_WINDOW in all: Whisper hears 30 s.
            room = max(0, round(LONGEST_WINDOW * SAMPLE_RATE) - len(audio))
            ahead = utterance.audio()[len(audio): len(audio) + min(
                room, round(self.options.final_ahead * SAMPLE_RATE))]
        before = self._context(utterance, len(audio) + len(ahead)) if final else audio[:0]
        return DecodeJob(self, kind, utterance, np.concatenate([before, audio, ahead]),
                         self.options.decode_options("final" if final else kind, language,
                                                     context),
                         candidates, sentence=until is not None, context=len(before),
                         ahead=len(ahead), thorough=thorough)

    def _context(self, utterance: _Utterance, samples: int) -> np.ndarray:
        """The stream's audio a final of ``samples`` of ``utterance`` hears before it
        (``final_context``; with ``context_gap``, the speech of the finals before it; in
        interpreter mode the turn's own audio before it)."""
        heard = min(self.options.final_context, LONGEST_WINDOW - samples / SAMPLE_RATE)
        if self.options.identifies:
            # Interpreter mode: the audio before the turn may be the other party's language
            # (so the turn's own audio only, as it came).
            heard = min(heard, (utterance.start - utterance.onset) / SAMPLE_RATE)
        elif self.options.context_gap is not None:
            return self._speech_before(utterance.start, heard)
        return self._recent.before(utterance.start, heard)

    def _speech_before(self, sample: int, seconds: float) -> np.ndarray:
        """Up to ``seconds`` of the stream's audio before stream sample ``sample``: the spans
        of its last finals, most recent last, each silence between them (and before
        ``sample``) shortened to ``context_gap``."""
        assert self.options.context_gap is not None
        need, end = round(seconds * SAMPLE_RATE), sample
        gap = round(self.options.context_gap * SAMPLE_RATE)
        ranges: list[tuple[int, int]] = []  # (first, last) stream samples, latest first
        for first, last in reversed(self._spans):
            last = min(last, end)
            if need <= 0 or last <= first:
                continue
            silence = min(end - last, gap, need)
            if silence:
                ranges.append((end - silence, end))
                need -= silence
            take = min(last - first, need)
            if take > 0:
                ranges.append((last - take, last))
                need -= take
            end = last - take
        if not ranges:
            return np.zeros(0, np.float32)
        # One copy of the audio held since the earliest range, sliced (not one per range).
        held = self._recent.before(sample, (sample - ranges[-1][0]) / SAMPLE_RATE)
        origin = sample - len(held)
        return np.concatenate([held[max(0, a - origin): max(0, b - origin)]
                               for a, b in reversed(ranges)])

    def complete(self, job: DecodeJob,
                 result: tuple[Sequence[Segment], str]) -> list[StreamUpdate]:
        """Take the result of ``job`` (segments with times relative to its audio, and the
        language); return what changed."""
        segments, language = result
        if job.stream is not self:
            raise ValueError("this job belongs to another stream")
        if job.early is not None and job.decided is None and job.utterance is self._open \
                and self.vad.silent_since == job.early:
            job.utterance.kept = (job, (list(segments), language))  # it may end the utterance
        if job.context:
            said = self._said.rpartition(" ")[2]
            segments = _after(segments, job.context / SAMPLE_RATE, said, self.options.edges)
        if job.ahead:
            segments = _until(segments, job.seconds)
        self._busy = False
        utterance = job.utterance
        utterance.language = language
        offset = utterance.start / SAMPLE_RATE
        words = [replace(w, start=w.start + offset, end=w.end + offset)
                 for s in segments for w in s.words]
        self._decoded_until = max(self._decoded_until, utterance.start + job.samples)
        if job.options.language is None and len(job.audio) >= IDENTIFY_AFTER * SAMPLE_RATE:
            utterance.settled = language  # identified on enough of the turn to trust it
        if job.kind == "final" or self._ended_early(job):
            return self._finalise(job, list(segments), words, language)
        if utterance is not self._open:
            return []  # it closed while this partial was decoded; its final comes next
        return self._take_partial(job, list(segments), words, language)

    def _ended_early(self, job: DecodeJob) -> bool:
        """``job`` is an early final, and the silence it was decoded in closed its utterance
        while it ran: it heard all of the utterance's speech."""
        utterance = job.utterance
        return job.early is not None and utterance is not self._open \
            and utterance.silent_from == job.early

    def _take_partial(self, job: DecodeJob, segments: list[Segment], words: list[Word],
                      language: str) -> list[StreamUpdate]:
        """A partial's words: LocalAgreement, then the sentence ends that make finals."""
        utterance = job.utterance
        if job.early is not None and any(p[0] == job.early for p in utterance.pauses):
            utterance.searched = job.early
        before = utterance.previous
        # A kept early final comes back as the same hypothesis: it does not agree with itself.
        agreed = _common_prefix(before, words) if job.decided is None else []
        if len(agreed) > len(utterance.committed):
            # Committed words never change, even where punctuation or case now differ.
            utterance.committed = [*utterance.committed, *agreed[len(utterance.committed):]]
        utterance.previous = words
        updates: list[StreamUpdate] = []
        if utterance.samples / SAMPLE_RATE >= self.options.trim_after:
            found = self._boundary(utterance, words)
            if self.options.pause_end is not None and self.options.sentence_decode:
                paused = self._pause_boundary(
                    utterance, words,
                    utterance.start + job.samples if job.thorough else None, job.early)
                if paused is not None and (found is None or paused[1] > found[1]):
                    found = paused
            if found is None and self.options.agreed_ends and self.options.sentence_decode:
                found = self._agreed_boundary(utterance, before, words)
            if found is not None and job.thorough and self.options.final_at_pause \
                    and not self._should_wait(utterance.start + job.samples - found[1]) \
                    and any((w.start + w.end) / 2 * SAMPLE_RATE < found[1] for w in words):
                updates.append(self._final_from(utterance, segments, words, found[1],
                                                language))
            elif found is not None and self.options.sentence_decode:
                # Its final is the next job; one waiting (sentence_wait) keeps its cut.
                utterance.boundary = found[1] if utterance.boundary is None \
                    else min(utterance.boundary, found[1])
            elif found is not None:
                updates.append(self._committed_final(utterance, found[0], found[1], language))
        shown = [*utterance.committed, *utterance.previous[len(utterance.committed):]]
        if shown:
            updates.append(self._partial(utterance, shown, len(utterance.committed),
                                         language, job))
        return updates

    def _boundary(self, utterance: _Utterance, words: Sequence[Word]
                  ) -> tuple[int, int] | None:
        """The last committed word that ends a sentence (or, with ``pause_split``, comes
        before such a pause) and whose next word has begun: its index, and the stream sample
        between the two words where the buffer is cut. None when there is none."""
        committed = utterance.committed
        heard = [*committed, *words[len(committed):]]
        for index in range(len(committed) - 1, -1, -1):
            if index + 1 < len(heard):
                cut = self._cut(utterance, heard[index], heard[index + 1], pause=True)
                if cut is not None:
                    return index, cut
        return None

    def _pause_boundary(self, utterance: _Utterance, words: Sequence[Word],
                        until: int | None = None, early: int | None = None
                        ) -> tuple[int, int] | None:
        """The last pause (of at least ``pause_end`` seconds, after which the speaker went on)
        where the latest hypothesis ``words`` ends a sentence: the word before the pause's
        middle ends with sentence punctuation, ``min_sentence`` seconds or more into the
        buffer, and a word follows it (a partial ends its last word with a full stop wherever
        its audio stops); or, ``long_sentence`` seconds or more into the buffer, any word. The
        index of that word and the pause's middle, where the buffer is cut; None when there is
        none. ``until``: the stream sample where the decode's audio ended, when it was decoded
        as a final (``final_at_pause``): a pause that ended before it needs no word written
        after it, since the decode heard the silence and the speech after it (Whisper often
        writes nothing for the first tenths of a second of a word). ``early``: where the
        silence began that an early final was decoded in; the pause that began there is
        followed (the speaker went on), as that decode heard the silence after its words."""
        begin = utterance.start / SAMPLE_RATE
        long = self.options.long_sentence
        for start, end in reversed(utterance.pauses):
            middle = (start + end) // 2
            before = sum(1 for w in words if (w.start + w.end) / 2 * SAMPLE_RATE < middle)
            followed = before < len(words) or (until is not None and end < until) \
                or start == early
            if before == 0 or not followed:
                continue
            heard = words[before - 1].end - begin
            if heard >= self.options.min_sentence and (
                    words[before - 1].ends_sentence or (long is not None and heard >= long)):
                return before - 1, middle
        return None

    def _agreed_boundary(self, utterance: _Utterance, before: Sequence[Word],
                         words: Sequence[Word]) -> tuple[int, int] | None:
        """A sentence end that the last two hypotheses agree on where it is (within
        ``AGREED_END`` seconds), though a word before it differs between them (a number
        written two ways, a name): LocalAgreement would hold the whole rest of the turn
        behind that word, but a final decodes its audio again, so only the place matters."""
        ends = [w.end for w in before if w.ends_sentence]
        for index in range(len(words) - 2, -1, -1):
            word = words[index]
            if any(abs(word.end - end) <= AGREED_END for end in ends):
                cut = self._cut(utterance, word, words[index + 1], pause=False)
                if cut is not None:
                    return index, cut
        return None

    def _cut(self, utterance: _Utterance, word: Word, after: Word, *, pause: bool
             ) -> int | None:
        """The stream sample where the buffer is cut between ``word`` and the next word
        ``after`` when ``word`` ends a final (a sentence, or with ``pause`` and
        ``pause_split`` a pause), else None."""
        options = self.options
        if word.end - utterance.start / SAMPLE_RATE < options.min_sentence:
            return None
        gap = after.start - word.end
        ends = word.ends_sentence and gap >= options.sentence_gap
        if not ends and not (pause and options.pause_split is not None
                             and gap >= options.pause_split):
            return None
        return round((word.end + max(0.0, min(gap / 2, CUT_MARGIN))) * SAMPLE_RATE)

    def _finalise(self, job: DecodeJob, segments: list[Segment], words: list[Word],
                  language: str) -> list[StreamUpdate]:
        utterance = job.utterance
        if job.sentence:
            return self._finalise_sentence(job, segments, words, language)
        # An open utterance that reached max_utterance, or one that grew while it was decoded
        # (not an early final whose silence closed it: the rest of that is silence).
        cut = utterance.end is None or (job.samples < utterance.samples
                                        and not self._ended_early(job))
        keep = segments
        if cut and len(segments) > 1:
            keep = segments[:-1]  # its last segment may run on: decode it again with the rest
        updates = []
        kept_words = [w for w in words if w.end <= utterance.start / SAMPLE_RATE
                      + keep[-1].end + 1e-6] if keep else []
        if keep and cut and len(segments) > 1:
            final_end = utterance.start + round(segments[-1].start * SAMPLE_RATE)
        else:
            final_end = utterance.start + (job.samples if cut else utterance.samples)
        text = " ".join(s.text.strip() for s in keep if s.text.strip())
        if text:
            updates.append(self._final(utterance, text, kept_words, language,
                                       utterance.start, final_end, keep))
        if cut:
            self._continue(utterance, final_end)
        else:
            self._close_final(utterance)
        return updates

    def _finalise_sentence(self, job: DecodeJob, segments: list[Segment], words: list[Word],
                           language: str) -> list[StreamUpdate]:
        """The final of the audio up to a committed sentence end; the buffer goes on after
        it. Should the decode find no words there, the committed words before the cut (or the
        last partial's, when it has more) are the final: what was shown is never lost."""
        utterance = job.utterance
        end = utterance.start + job.samples
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        if not text:
            words = max(([w for w in heard if w.end * SAMPLE_RATE <= end]
                         for heard in (utterance.committed, utterance.previous)), key=len)
            text = "".join(w.text for w in words).strip()
        updates = []
        if text:
            updates.append(self._final(utterance, text, words, language, utterance.start,
                                       end, segments))
        self._continue(utterance, end)
        if utterance.end is not None and utterance.samples == 0:
            self._close_final(utterance)  # it closed while decoded, right after the sentence
        return updates

    def _final_from(self, utterance: _Utterance, segments: list[Segment], words: list[Word],
                    cut: int, language: str) -> StreamUpdate:
        """The words of a thorough partial (``final_at_pause``) before stream sample ``cut``
        as the final of the buffer up to there; the buffer goes on after it, with the words
        after the cut as its last hypothesis."""
        mine = [w for w in words if (w.start + w.end) / 2 * SAMPLE_RATE < cut]
        text = "".join(w.text for w in mine).strip()
        heard = [s for s in segments if s.start * SAMPLE_RATE + utterance.start < cut]
        update = self._final(utterance, text, mine, language, utterance.start, cut, heard)
        self._continue(utterance, cut)
        return update

    def _close_final(self, utterance: _Utterance) -> None:
        assert self._closed and self._closed[0] is utterance
        self._closed.popleft()
        if self._open is None and not self._closed:
            self._decoded_until = self.received

    def _committed_final(self, utterance: _Utterance, last: int, cut: int,
                         language: str) -> StreamUpdate:
        """The committed words up to index ``last`` as a final, as they stand; the buffer is
        trimmed at ``cut``."""
        words = utterance.committed[: last + 1]
        text = "".join(w.text for w in words).strip()
        update = self._final(utterance, text, words, language, utterance.start, cut, [])
        self._continue(utterance, cut)
        return update

    def _continue(self, utterance: _Utterance, cut: int) -> None:
        """The buffer before ``cut`` has its final: the rest goes on as the next utterance."""
        utterance.trim(cut)
        utterance.number = self._numbers
        self._numbers += 1

    def _final(self, utterance: _Utterance, text: str, words: Sequence[Word], language: str,
               start: int, end: int, segments: Sequence[Segment]) -> StreamUpdate:
        logprobs = [s.avg_logprob for s in segments if s.avg_logprob is not None]
        segment = Segment(id=self.finals, start=start / SAMPLE_RATE, end=end / SAMPLE_RATE,
                          text=text, words=tuple(words), language=language, is_final=True,
                          avg_logprob=float(np.mean(logprobs)) if logprobs else None)
        self.finals += 1
        self._said = f"{self._said} {text}".strip()[-PROMPT_KEPT:]
        if text:
            self._spans.append((start, end))
        return StreamUpdate(utterance.number, segment)

    def _partial(self, utterance: _Utterance, words: Sequence[Word], stable: int,
                 language: str, job: DecodeJob) -> StreamUpdate:
        text = "".join(w.text for w in words).strip()
        stable_text = "".join(w.text for w in words[:stable]).strip()
        start = utterance.start / SAMPLE_RATE
        segment = Segment(id=utterance.number, start=start, end=start + job.seconds, text=text,
                          words=tuple(words), language=language, is_final=False)
        return StreamUpdate(utterance.number, segment, stable_text)


class RecentAudio:
    """The last ``keep`` samples of a stream, by their place on its clock."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._pieces: deque[np.ndarray] = deque()
        self._held = 0
        self.end = 0
        """Stream sample after the last one added."""

    def add(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.end += len(samples)
        if not self.keep:
            return
        self._pieces.append(samples)
        self._held += len(samples)
        while self._pieces and self._held - len(self._pieces[0]) >= self.keep:
            self._held -= len(self._pieces.popleft())

    def before(self, sample: int, seconds: float) -> np.ndarray:
        """Up to ``seconds`` of the audio that ends at stream sample ``sample`` (less when
        less is held)."""
        first = self.end - self._held
        begin = max(first, sample - round(max(seconds, 0.0) * SAMPLE_RATE))
        if not self._pieces or begin >= sample:
            return np.zeros(0, np.float32)
        # Only the pieces the range overlaps, latest first (not a copy of all that is held).
        parts: list[np.ndarray] = []
        stop = self.end
        for piece in reversed(self._pieces):
            start = stop - len(piece)
            if start < sample and stop > begin:
                parts.append(piece[max(begin - start, 0): min(sample, stop) - start])
            if start <= begin:
                break
            stop = start
        return np.concatenate(parts[::-1]) if parts else np.zeros(0, np.float32)


def _after(segments: Sequence[Segment], seconds: float, said: str = "",
           edges: bool = True) -> list[Segment]:
    """``segments`` of a window that began ``seconds`` before the utterance, on the
    utterance's clock, without the words heard before it (those centred before 0). A word
    that began before 0 and reads as ``said`` (the last word of the final before) is that
    final's last word, which this decode heard across the cut and timed later: it is dropped
    too.

    With ``edges``, the utterance's first words are kept where Whisper timed them early:

    * a word heard across the cut (begun before it, ended after it) whatever its centre:
      the first word after a silence is aligned from well inside that silence ("have" from
      -0.84 to 0.38 s, "you" from -1.08 to 0.38 s);
    * words that end less than ``EDGE`` seconds before the cut and come after ``said`` as
      this decode heard it: they are not the final before ("And no, I don't | think so.").
    """
    last = _key(said)
    flat = [w for segment in segments for w in segment.words]
    before = [i for i, w in enumerate(flat) if (w.start + w.end) / 2 < seconds]
    anchor = next((i for i in reversed(before) if last and _key(flat[i]) == last), None)

    def kept_word(index: int, word: Word) -> bool:
        if last and word.start < seconds and _key(word) == last:
            return False  # the final before's last word, heard again
        if (word.start + word.end) / 2 >= seconds:
            return True
        if not edges or (anchor is not None and index <= anchor):
            return False
        return word.end > seconds or (anchor is not None and word.end > seconds - EDGE)

    keep = iter([kept_word(i, w) for i, w in enumerate(flat)])
    kept: list[Segment] = []
    for segment in segments:
        mine = [w for w in segment.words if next(keep)]
        words = tuple(replace(w, start=max(0.0, w.start - seconds), end=max(0.0, w.end - seconds))
                      for w in mine)
        if not words:
            continue
        kept.append(replace(segment, id=len(kept), start=words[0].start,
                            end=max(words[-1].end, segment.end - seconds),
                            text="".join(w.text for w in words).strip(), words=words))
    return kept


def _until(segments: Sequence[Segment], seconds: float) -> list[Segment]:
    """``segments`` without the words centred ``seconds`` or later into the window (heard
    after a sentence's cut: the next final's)."""
    kept: list[Segment] = []
    for segment in segments:
        words = tuple(w for w in segment.words if (w.start + w.end) / 2 < seconds)
        if words:
            kept.append(replace(segment, id=len(kept), end=min(segment.end, words[-1].end),
                                text="".join(w.text for w in words).strip(), words=words))
    return kept


def _last_pause_began(utterance: _Utterance, sample: int | None) -> bool:
    """The last pause heard in ``utterance`` began at stream sample ``sample``."""
    return sample is not None and bool(utterance.pauses) and utterance.pauses[-1][0] == sample


def _key(word: Word | str) -> str:
    """A word (or a word's text) as compared between hypotheses: lower case, no punctuation."""
    return re.sub(r"[^\w']+", "", (word if isinstance(word, str) else word.text).lower())


def _common_prefix(previous: Sequence[Word], current: Sequence[Word]) -> list[Word]:
    """LocalAgreement-2: the words of ``current`` that ``previous`` also began with."""
    agreed: list[Word] = []
    for before, now in zip(previous, current, strict=False):
        if _key(before) != _key(now):
            break
        agreed.append(now)
    return agreed


def replay(stream: OnlineTranscriber, audio: np.ndarray,
           decode: Callable[[DecodeJob], WindowResult], step: int = 1600
           ) -> Iterator[StreamUpdate]:
    """Stream recorded ``audio`` through ``stream`` without a clock: ``step`` samples (0.1 s)
    at a time with at most one decode after each piece, as a server that keeps up decodes;
    then, once the audio has ended, every job left. The updates in order."""
    for begin in range(0, len(audio) + step, step):
        if begin < len(audio):
            stream.accept(audio[begin:begin + step])
        else:
            stream.finish()
        while (job := stream.next_job()) is not None:
            yield from stream.complete(job, decode(job))
            if begin < len(audio):
                break


def decode_jobs(recogniser: Recogniser, jobs: Sequence[DecodeJob], *, batch: bool = True,
                hurry: bool = False) -> list[WindowResult]:
    """Run ``jobs`` (from any streams): segments and language of each, in order.

    A job whose result is decided already (a kept early final) gives it as it is. Jobs
    without a language are identified first, among their candidates. With ``batch``,
    jobs whose decoding options agree run in one model call. Partials are decoded greedily on
    the audio alone (fast); finals (and partials decoded as finals, ``DecodeJob.thorough``)
    with the stream's ``beam_size``, its ``final_window`` (Whisper's full 30 s by default) and
    its temperature fallback (accurate; unless the stream's ``final_fallback`` is off). With
    ``hurry`` (the server is falling behind), finals see 20 s of context at most: 40 % less
    work for some accuracy (tiny.en on the OSCE sample: 15.5 % WER instead of
    13.1 %, batch transcription 17.9 %).
    """
    results: list[WindowResult | None] = [job.decided for job in jobs]
    languages = [job.decided[1] if job.decided is not None else _language(recogniser, job)
                 for job in jobs]
    groups: dict[tuple[TranscribeOptions, bool, int | None], list[int]] = {}
    for index, (job, language) in enumerate(zip(jobs, languages, strict=True)):
        if job.decided is not None:
            continue  # a kept early final: its result is known
        options = replace(job.options, language=language)
        stream = job.stream.options
        frames = _final_frames(stream.final_window, hurry) if job.as_final else PARTIAL_CONTEXT
        groups.setdefault((options, job.as_final and stream.final_fallback, frames),
                          []).append(index)
    for (options, fallback, context), members in groups.items():
        chunks = [members] if batch else [[m] for m in members]
        for chunk in chunks:
            decoded = recogniser.transcribe_windows([jobs[i].audio for i in chunk], options,
                                                    fallback=fallback, context=context)
            for index, segments in zip(chunk, decoded, strict=True):
                results[index] = (segments, languages[index])
    return [r for r in results if r is not None]


def _final_frames(window: float, hurry: bool) -> int | None:
    """Frames a final's encoder hears at least (None: Whisper's whole window)."""
    frames = round(window * 100)
    if hurry:
        frames = min(frames, HURRIED_FINAL_CONTEXT)
    return None if frames >= 3000 else frames


def _language(recogniser: Recogniser, job: DecodeJob) -> str:
    if job.options.language is not None:
        return job.options.language
    if not recogniser.multilingual:
        return "en"
    # A job without a language hears only its turn (its context, if any, is the turn's own
    # audio before it: :attr:`StreamOptions.identifies`), all of which identifies it.
    ranked = recogniser.detect_language(job.audio, vad_filter=False)
    if job.candidates:
        return pick_language(ranked, job.candidates, job.stream.options.english_discount)
    return ranked[0][0]
