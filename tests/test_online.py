"""Incremental recognition: streaming VAD, LocalAgreement-2, utterance finals, trimming."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from faster_whisper.vad import get_vad_model

from eval.wer import error_rate
from speech.audio import SAMPLE_RATE, load_audio
from speech.identify import pick_language
from speech.online import (
    AFTER_PAUSE,
    GUESS_AGAIN,
    IDENTIFY_AFTER,
    DecodeJob,
    JobKind,
    OnlineTranscriber,
    RecentAudio,
    StreamOptions,
    StreamUpdate,
    _after,
    _common_prefix,
    _Utterance,
    decode_jobs,
)
from speech.options import TranscribeOptions
from speech.types import Segment, Word
from speech.vad import SpeechProbabilities, StreamingVAD, VadEvent
from tests.conftest import REPO, SPEECH
from tests.scripted import Scripted, monologue, stream_silence

JFK = SPEECH / "jfk_inaugural" / "jfk.flac"


def _run(asr: Any, audio: np.ndarray, options: StreamOptions, step: int = 1600
         ) -> tuple[list[StreamUpdate], OnlineTranscriber]:
    """Feed ``audio`` in 100 ms pieces, decoding whenever the stream asks (no real time)."""
    stream = OnlineTranscriber(options)
    updates: list[StreamUpdate] = []
    longest = 0
    for begin in range(0, len(audio), step):
        stream.accept(audio[begin:begin + step])
        job = stream.next_job()
        if job is not None:
            longest = max(longest, job.samples)  # the utterance's own audio
            assert job.context <= options.final_context * 16000
            updates += stream.complete(job, decode_jobs(asr, [job])[0])
    stream.finish()
    while not stream.done:
        job = stream.next_job()
        assert job is not None
        updates += stream.complete(job, decode_jobs(asr, [job])[0])
    stream.longest_window = longest  # type: ignore[attr-defined]
    return updates, stream


def test_streaming_vad_matches_whole_recording_vad() -> None:
    audio = load_audio(JFK)
    usable = len(audio) // 512 * 512
    whole = get_vad_model()(audio[:usable]).reshape(-1)
    stream = SpeechProbabilities()
    rng = np.random.default_rng(0)
    pieces, begin = [], 0
    while begin < usable:
        size = int(rng.integers(1, 6000))
        pieces.append(stream(audio[begin:min(begin + size, usable)]))
        begin += size
    assert np.allclose(np.concatenate(pieces), whole, atol=1e-6)


def test_vad_finds_the_pauses_between_phrases() -> None:
    audio = load_audio(JFK)
    vad = StreamingVAD()
    events = [e for i in range(0, len(audio), 1600) for e in vad.feed(audio[i:i + 1600])]
    onsets = [e.sample / 16000 for e in events if e.kind == "onset"]
    # "And so my fellow Americans | ask not | what your country can do for you | ask what …"
    assert len(onsets) == 4
    assert onsets[0] < 0.5
    # Dips shorter than the end of an utterance are heard as pauses inside it.
    pauses = [(e.sample / 16000, (e.until or 0) / 16000) for e in events if e.kind == "pause"]
    assert pauses and all(0 < b - a < 0.5 for a, b in pauses), pauses
    assert any(3.5 < a < b < 4.2 for a, b in pauses), pauses  # "ask not | what your …"


def test_the_vad_says_where_the_silence_at_the_end_of_speech_began() -> None:
    """``silent_since``: in a dip inside speech (a pause, or the start of the end of an
    utterance), the sample where it began; in speech and after the offset, None."""
    audio = load_audio(JFK)
    vad = StreamingVAD()
    seen: list[tuple[int, int | None]] = []
    events: list[VadEvent] = []
    for begin in range(0, len(audio), 512):
        events += vad.feed(audio[begin:begin + 512])
        seen.append((vad.position, vad.silent_since))
    pauses = [(e.sample, e.until) for e in events if e.kind == "pause"]
    offsets = [e.sample for e in events if e.kind == "offset"]
    assert pauses and offsets
    for start, until in pauses:  # heard silent from the pause's start until speech resumed
        inside = [since for at, since in seen if start < at <= (until or 0)]
        assert inside and all(since == start for since in inside)
    first = offsets[0]  # the offset is where the silence began, plus the speech padding
    during = [since for at, since in seen if first - 6400 < at < first]
    assert during and all(since == during[-1] for since in during[-3:])
    assert during[-1] == first - vad.settings.speech_pad_ms * 16
    assert next(e.silence for e in events if e.kind == "offset") == during[-1]
    assert all(since is None for at, since in seen if first + 1600 < at < first + 3200)


def test_local_agreement_commits_the_common_prefix() -> None:
    def words(text: str) -> list[Word]:
        return [Word(i, i + 1, " " + w, 1.0) for i, w in enumerate(text.split())]

    assert [w.text for w in _common_prefix(words("the patient denies"),
                                           words("The patient, denied chest pain"))] == \
        [" The", " patient,"]
    assert _common_prefix([], words("anything")) == []


def test_silence_and_noise_produce_no_work() -> None:
    rng = np.random.default_rng(1)
    audio = np.concatenate([np.zeros(16000 * 3, np.float32),
                            (0.01 * rng.standard_normal(16000 * 5)).astype(np.float32)])
    stream = OnlineTranscriber(StreamOptions(language="en"))
    for begin in range(0, len(audio), 1600):
        stream.accept(audio[begin:begin + 1600])
        assert stream.next_job() is None
    stream.finish()
    assert stream.done and stream.backlog == 0


@pytest.mark.slow
def test_online_finals_match_the_reference(tiny_en: Any) -> None:
    audio = load_audio(REPO / "samples" / "osce_car0001_50s.mp3")
    reference = (REPO / "samples" / "osce_car0001_50s.txt").read_text()
    updates, stream = _run(tiny_en, audio, StreamOptions(language="en"))
    finals = [u.segment for u in updates if u.segment.is_final]
    partials = [u for u in updates if not u.segment.is_final]
    assert len(finals) >= 5 and partials
    assert [f.id for f in finals] == list(range(len(finals)))
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(finals))
    wer = error_rate([reference], [" ".join(f.text for f in finals)]).score
    segments, _ = tiny_en.transcribe(audio, TranscribeOptions(language="en"))
    batch = error_rate([reference], [" ".join(s.text for s in segments)]).score
    assert wer <= batch + 5, (wer, batch)  # measured: 13.1 streamed, 17.9 batch
    # The committed prefix of an utterance only grows, and partials come before its final.
    by_utterance: dict[int, list[str]] = {}
    for update in partials:
        by_utterance.setdefault(update.utterance, []).append(update.stable)
    for stables in by_utterance.values():
        for before, after in itertools.pairwise(stables):
            assert after.startswith(before) or not before
    assert stream.backlog == 0


@pytest.mark.slow
def test_long_speech_is_trimmed_at_committed_sentences(tiny_en: Any) -> None:
    """With short limits, one long stretch of speech is finalised piecewise, and no decode
    window grows past the cut limit (latency cannot creep)."""
    audio = load_audio(REPO / "samples" / "osce_car0001_50s.mp3")
    reference = (REPO / "samples" / "osce_car0001_50s.txt").read_text()
    options = StreamOptions(language="en", min_silence_ms=2000, trim_after=4.0,
                            max_utterance=8.0)
    updates, stream = _run(tiny_en, audio, options)
    finals = [u.segment for u in updates if u.segment.is_final]
    assert max(f.end - f.start for f in finals) <= 8.5
    assert stream.longest_window <= 8.6 * 16000  # type: ignore[attr-defined]
    # (each final also hears up to final_context seconds of the audio before it)
    wer = error_rate([reference], [" ".join(f.text for f in finals)]).score
    assert wer < 35, wer


# -- the finalisation policy, with a scripted recogniser (fast) --------------------------------
def _stream_script(recogniser: Scripted, options: StreamOptions, seconds: float
                   ) -> list[tuple[float, StreamUpdate]]:
    """A stream of ``recogniser`` fed ``seconds`` of audio (:func:`stream_silence`)."""
    return stream_silence(recogniser.open_stream(options),
                          lambda job: recogniser.decode([job])[0], seconds)


def _turn(sentences: list[str], options: StreamOptions, gap: float = 0.3,
          **script: Any) -> tuple[list[Word], Scripted, list[tuple[float, Segment]]]:
    """One turn of ``sentences`` streamed: its words, the recogniser, the finals (each with
    the audio received when it came)."""
    words = monologue(sentences, gap)
    end = words[-1].end
    recogniser = Scripted(words, 0.3, end + 0.5, **script)
    updates = _stream_script(recogniser, options, end + 2)
    return words, recogniser, [(at, u.segment) for at, u in updates if u.segment.is_final]


SENTENCES = ["The pain started on Monday morning at work.",
             "It spreads to my left arm when I climb stairs.",
             "I also feel short of breath and a bit dizzy.",
             "My father had a heart attack at sixty.",
             "I take aspirin and a statin every day."]


def test_each_sentence_of_a_long_turn_is_final_once_committed() -> None:
    words, _, finals = _turn(SENTENCES, StreamOptions(language="en"))
    texts = [f.text for _, f in finals]
    assert texts == SENTENCES  # one final per sentence, in order, every word once
    assert [f.id for _, f in finals] == list(range(len(SENTENCES)))
    assert all(a.end <= b.start for (_, a), (_, b) in itertools.pairwise(finals))
    last_words = [w for w in words if w.text.endswith(".")]
    for (at, final), last in zip(finals[:-1], last_words, strict=False):
        # Committed (two partials agree) once the next sentence has begun: within 1.5 s of
        # audio after the sentence's last word, not at the end of the 20 s turn.
        assert final.end >= last.end and at <= last.end + 1.5, (final.text, at, last.end)
        assert final.end < words[words.index(last) + 1].start  # cut in the gap, not a word


def test_the_old_policy_held_sentences_until_the_buffer_passed_trim_after() -> None:
    words, _, finals = _turn(SENTENCES, StreamOptions(language="en", trim_after=10.0))
    first_sentence_end = words[8].end
    assert " ".join(f.text for _, f in finals) == " ".join(SENTENCES)
    assert finals[0][0] >= 10.3 > first_sentence_end + 5  # waited for 10 s of buffer


def _slow(recogniser: Scripted, options: StreamOptions, seconds: float, delay: float
          ) -> list[tuple[float, StreamUpdate]]:
    """As :func:`_stream_script`, each decode taking ``delay`` seconds of audio."""
    return stream_silence(recogniser.open_stream(options),
                          lambda job: recogniser.decode([job])[0], seconds, delay)


def test_an_early_final_is_the_final_when_the_silence_ends_the_utterance() -> None:
    """``early_final``: 0.2 s into the silence after the last word, the buffer is decoded as
    a final is; the VAD then ends the utterance (here 1 s after the word) while it runs,
    and it is the final, with no decode after the end; the final comes sooner than the
    final decoded after the end, the same text over the same audio."""
    words = monologue(SENTENCES[:1])
    runs = {}
    for early in (0.2, None):
        recogniser = Scripted(words, 0.3, words[-1].end + 1.0)
        updates = _slow(recogniser, StreamOptions(language="en", early_final=early,
                                                  min_silence_ms=1000),
                        words[-1].end + 3, delay=0.6)
        finals = [(at, u.segment) for at, u in updates if u.segment.is_final]
        runs[early] = (finals, [kind for kind, *_ in recogniser.calls])
    (early_finals, early_kinds), (late_finals, late_kinds) = runs[0.2], runs[None]
    assert [f.text for _, f in early_finals] == [f.text for _, f in late_finals] == SENTENCES[:1]
    assert early_finals[0][1].end == late_finals[0][1].end == pytest.approx(words[-1].end + 1)
    assert "final" not in early_kinds and early_kinds[-1] == "thorough"
    assert late_kinds[-1] == "final"
    # 0.2 s into the silence (0.1 s pieces), after the partial in flight then, if any.
    assert early_finals[0][0] <= words[-1].end + 0.2 + 0.1 + 2 * 0.6 + 1e-6
    assert early_finals[0][0] < late_finals[0][0]
    with pytest.raises(ValueError, match="early_final"):
        StreamOptions(early_final=0.5)


def test_an_early_final_kept_in_a_pause_is_the_sentences_final_when_the_speaker_goes_on() -> None:
    """A decode that returns while its silence goes on is kept: once the speaker goes on, it
    is the decode that looks for a sentence end at the pause (no decode of its own), and the
    sentence's final comes as soon as the speech resumes; at the turn's end it is the final.
    A decode still running when the speaker goes on does the same when it returns."""
    for delay in (0.0, 0.6):
        recogniser = Scripted(monologue(SENTENCES[:3], gap=0.4), 0.3, 0)
        words = recogniser.words
        recogniser.offset = words[-1].end + 0.5
        updates = _slow(recogniser, StreamOptions(language="en"), words[-1].end + 3, delay)
        finals = [(at, u.segment) for at, u in updates if u.segment.is_final]
        kinds = [kind for kind, *_ in recogniser.calls]
        assert [f.text for _, f in finals] == SENTENCES[:3], delay
        assert kinds.count("thorough") == 3 and "final" not in kinds, (delay, kinds)
        resumed = [b.start for a, b in itertools.pairwise(words) if a.text.endswith(".")]
        # Kept: final as the speech resumes; else the decode in flight (an early final, or a
        # partial before it) returns, and the partial after the pause, if it is not.
        for (at, _), start in zip(finals, resumed, strict=False):
            bound = start + 0.1 if delay == 0 else start + AFTER_PAUSE + 2 * delay + 0.1
            assert at <= bound + 1e-6, (delay, at, start)


def test_a_kept_early_final_is_final_at_once_when_the_pause_ends_past_its_audio() -> None:
    """The cut of a long pause (its middle) can lie past the audio of the early final decoded
    0.2 s into it; without ``sentence_wait`` that decode's words are still the sentence's
    final at once, with no final decode of their own."""
    for gap in (0.45, 0.48):
        recogniser = Scripted(monologue(SENTENCES[:3], gap=gap), 0.3, 0)
        words = recogniser.words
        recogniser.offset = words[-1].end + 0.5
        updates = _slow(recogniser, StreamOptions(language="en"), words[-1].end + 3, 0.0)
        finals = [u.segment for _, u in updates if u.segment.is_final]
        assert [f.text for f in finals] == SENTENCES[:3], gap
        assert "final" not in [kind for kind, *_ in recogniser.calls], gap


def test_a_word_heard_across_the_cut_is_not_repeated_by_the_next_final() -> None:
    """A decode that begins before its utterance (``final_context``) drops the words heard
    there; a word it heard across the start (begun before it, centred after) is the last
    word of the final before when it reads the same, and is dropped too."""
    def window(*words: tuple[float, float, str]) -> list[Segment]:
        heard = tuple(Word(a, b, text, 0.9) for a, b, text in words)
        return [Segment(0, heard[0].start, heard[-1].end, "".join(w.text for w in heard),
                        heard)]

    heard = window((0.0, 2.8, " being"), (2.8, 3.3, " the"), (3.4, 3.8, " worst"),
                   (3.8, 4.0, " pain."))
    assert [w.text for w in _after(heard, 3.0, "the...")[0].words] == [" worst", " pain."]
    assert [w.text for w in _after(heard, 3.0, "being")[0].words] == [" the", " worst",
                                                                      " pain."]
    assert _after(heard, 3.0, "being")[0].words[0].start == 0.0
    started_after = window((3.0, 3.3, " the"), (3.4, 3.8, " worst"))
    assert [w.text for w in _after(started_after, 3.0, "the")[0].words] == [" the", " worst"]


def test_a_final_context_can_shorten_the_silences_between_earlier_finals() -> None:
    """With ``context_gap``, a final's context is the speech of the finals before it, each
    silence between them (and before the utterance) shortened to that many seconds."""
    stream = OnlineTranscriber(StreamOptions(language="en", final_context=3.0,
                                             context_gap=0.5))
    stream.accept(np.arange(20 * SAMPLE_RATE, dtype=np.float32))  # each sample its index
    second = SAMPLE_RATE
    stream._spans.extend([(2 * second, 4 * second), (9 * second, 10 * second)])
    heard = stream._speech_before(15 * second, 3.0)
    expected = np.concatenate([np.arange(3 * second, 4 * second),  # end of the first
                               np.arange(8.5 * second, 9 * second),  # 0.5 s of silence
                               np.arange(9 * second, 10 * second),  # the second final
                               np.arange(14.5 * second, 15 * second)])  # silence before
    assert np.array_equal(heard, expected.astype(np.float32))
    assert len(stream._speech_before(15 * second, 10.0)) == round(
        (2 + 0.5 + 1 + 0.5) * second)  # all there is: the first span has no silence before
    # In interpreter mode the audio before the turn may be the other party's: the context
    # is the turn's own audio before the utterance, as it came.
    interpreter = OnlineTranscriber(StreamOptions(languages=("en", "pt"), final_context=3.0,
                                                  context_gap=0.5))
    interpreter.accept(np.arange(20 * SAMPLE_RATE, dtype=np.float32))
    interpreter._spans.extend([(2 * second, 4 * second), (9 * second, 10 * second)])
    turn = _Utterance(0, 14 * second, onset=13 * second)
    assert np.array_equal(interpreter._context(turn, second),
                          np.arange(13 * second, 14 * second).astype(np.float32))


def test_the_first_words_of_an_utterance_timed_before_its_cut_are_kept() -> None:
    """Whisper aligns the first word after a silence from well inside that silence, and may
    time a whole word early: a word heard across the cut is the utterance's, and so are words
    just before it that come after the final before as this decode heard it."""
    def window(*words: tuple[float, float, str]) -> list[Segment]:
        heard = tuple(Word(a, b, text, 0.9) for a, b, text in words)
        return [Segment(0, heard[0].start, heard[-1].end, "".join(w.text for w in heard),
                        heard)]

    stretched = window((1.0, 2.0, " I"), (2.0, 2.4, " see."), (4.16, 5.38, " Have"),
                       (5.38, 5.58, " you"), (5.58, 5.8, " had"))  # the cut at 5.0
    assert _after(stretched, 5.0, "see.")[0].text == "Have you had"
    assert _after(stretched, 5.0, "see.", edges=False)[0].text == "you had"
    early = window((3.5, 3.82, " And"), (3.82, 4.14, " no,"), (4.6, 4.62, " I"),
                   (4.62, 4.96, " don't"), (4.96, 5.32, " think"), (5.32, 6.06, " so."))
    assert _after(early, 5.0, "no.")[0].text == "I don't think so."
    assert _after(early, 5.0, "no.", edges=False)[0].text == "think so."
    # Without the final before's last word to go by, only the word across the cut is kept.
    assert _after(early, 5.0, "maybe")[0].text == "think so."
    assert _after(early, 5.0, "no.")[0].words[0].start == 0.0


def test_final_decodes_take_the_finals_before_them_as_prompt() -> None:
    _, recogniser, finals = _turn(SENTENCES[:3], StreamOptions(
        language="en", initial_prompt="Cardiology.", prompt_chars=60))
    prompts = [p for kind, _, _, p in recogniser.calls if kind != "partial"]
    assert prompts[0] == "Cardiology."
    assert prompts[1] == "Cardiology. " + finals[0][1].text
    said = f"{finals[0][1].text} {finals[1][1].text}"
    assert prompts[2] is not None and said.endswith(prompts[2].removeprefix("Cardiology. "))
    assert len(prompts[2]) <= len("Cardiology. ") + 60
    assert not prompts[2].removeprefix("Cardiology. ").startswith(("ork.", "k."))
    assert all(p == "Cardiology." for kind, _, _, p in recogniser.calls if kind == "partial")


def test_a_sentence_final_is_decoded_again_not_copied_from_partials() -> None:
    """Partials that slip on a word (short context) do not carry the slip into the final."""
    slips = {3: " mundane"}  # "on" misheard near the end of a partial window
    _, _, copied = _turn(SENTENCES[:3], StreamOptions(language="en", sentence_decode=False),
                         partial_slips=slips)
    assert copied[0][1].text.startswith("The pain started mundane")  # the slip was committed
    _, _, finals = _turn(SENTENCES[:3], StreamOptions(language="en"), partial_slips=slips)
    assert [f.text for _, f in finals] == SENTENCES[:3]


def test_a_word_that_keeps_changing_does_not_hold_back_the_sentence_ends_after_it() -> None:
    """A number spelt two ways in turn stops LocalAgreement at it for the rest of the turn;
    a sentence end of the latest partial that falls in a pause the VAD heard (``pause_end``,
    the default), or one both hypotheses agree on (``agreed_ends``), still ends a final
    promptly."""
    unstable = {1: " pain's"}  # "pain" / "pain's", partial after partial
    last_words = [w for w in monologue(SENTENCES) if w.text.endswith(".")]
    for options in (StreamOptions(language="en"),
                    StreamOptions(language="en", pause_end=None, agreed_ends=True)):
        _, _, finals = _turn(SENTENCES, options, unstable=unstable)
        assert [f.text for _, f in finals] == SENTENCES, options
        for (at, final), last in zip(finals[1:-1], last_words[1:], strict=False):
            assert at <= last.end + 1.5, (final.text, at, last.end)
    _, _, committed_only = _turn(SENTENCES, StreamOptions(language="en", pause_end=None,
                                                          early_final=None),
                                 unstable=unstable)
    assert len(committed_only) == 1  # LocalAgreement alone: one final at the turn's end


def test_a_sentence_end_without_a_pause_waits_for_local_agreement() -> None:
    """The pause rule needs both: sentence punctuation in the partial and a pause the VAD
    heard there. Sentences run together (no pause) are cut only where committed (no early
    final either: its decode, which does not slip, would agree with a partial)."""
    unstable = {1: " pain's"}
    _, _, finals = _turn(SENTENCES, StreamOptions(language="en", early_final=None), gap=0.05,
                         unstable=unstable)
    assert len(finals) == 1


def test_a_final_hears_the_audio_before_it_without_repeating_its_words() -> None:
    """With ``final_context``, a final's decode begins up to that many seconds before its
    utterance (Whisper hears the conversation, as batch decoding does); the words heard
    there belong to the finals before and are not repeated."""
    words, recogniser, finals = _turn(SENTENCES[:3], StreamOptions(
        language="en", final_context=3.0, context_gap=None))  # the audio as it came
    assert [f.text for _, f in finals] == SENTENCES[:3]
    starts = [begin for kind, begin, _, _ in recogniser.calls if kind != "partial"]
    assert starts[0] == 0.0  # the stream's first 0.3 s are all there is before it
    assert starts[1] == pytest.approx(finals[1][1].start - 3.0, abs=0.01)
    firsts = [words[0], *(b for a, b in itertools.pairwise(words) if a.text.endswith("."))]
    assert [f.words[0].start for _, f in finals] == pytest.approx([w.start for w in firsts])


def test_a_sentence_final_hears_the_audio_after_its_cut_without_taking_its_words() -> None:
    """With ``final_ahead``, the final of a committed sentence hears up to that much of the
    buffer after the sentence's cut (audio the stream already holds, so no wait); the words
    heard there are the next final's, not this one's."""
    options = StreamOptions(language="en", final_at_pause=False, final_ahead=0.0)
    _, plain, alone = _turn(SENTENCES[:4], options)
    _, recogniser, finals = _turn(SENTENCES[:4], replace(options, final_ahead=1.0))
    assert [f.text for _, f in finals] == [f.text for _, f in alone] == SENTENCES[:4]
    assert [(f.start, f.end) for _, f in finals] == [(f.start, f.end) for _, f in alone]
    ends = [end for kind, _, end, _ in plain.calls if kind == "final"]
    heard = [end for kind, _, end, _ in recogniser.calls if kind == "final"]
    assert len(heard) == len(ends) == 3  # the turn's last final is its early final
    # Each sentence's final heard what the stream held after its cut, up to a second; the
    # cuts are where they were without it.
    assert all(0.5 < b - a <= 1.0 + 1e-6 for a, b in zip(ends, heard, strict=True))
    assert [f.end for _, f in finals[:3]] == pytest.approx(ends)


def test_a_sentence_found_at_a_pause_can_wait_to_hear_what_follows_it() -> None:
    """With ``sentence_wait``, a sentence end found at a pause by a decode that heard less
    than that after the cut is not final at once: its final is decoded again once the
    buffer holds that much after the cut, and hears it (``final_ahead``)."""
    options = StreamOptions(language="en")
    _, quick, at_once = _turn(SENTENCES[:4], options)
    _, recogniser, waited = _turn(SENTENCES[:4], replace(options, sentence_wait=1.0))
    assert [f.text for _, f in waited] == [f.text for _, f in at_once] == SENTENCES[:4]
    assert [(f.start, f.end) for _, f in waited] == [(f.start, f.end) for _, f in at_once]
    assert "final" not in [kind for kind, *_ in quick.calls]  # the pause's decode was final
    heard = [end for kind, _, end, _ in recogniser.calls if kind == "final"]
    cuts = [f.end for _, f in waited[:3]]
    assert heard == pytest.approx([cut + 1.0 for cut in cuts], abs=0.11)
    for (came, final), (sooner, _) in zip(waited[:3], at_once[:3], strict=True):
        assert came >= final.end + 1.0 > sooner, (final.text, came, sooner)
    with pytest.raises(ValueError, match="sentence_wait"):
        StreamOptions(sentence_wait=6)
    with pytest.raises(ValueError, match="sentence_wait must not exceed final_ahead"):
        StreamOptions(sentence_wait=0.5, final_ahead=0.0)


def test_committed_words_are_kept_when_a_final_decode_hears_nothing() -> None:
    _, _, finals = _turn(SENTENCES[:3], StreamOptions(language="en"), final_words=False)
    # The sentence finals fall back to the committed words; the turn's last final decode
    # (the whole closed rest) has no committed sentence end to fall back on.
    assert [f.text for _, f in finals] == SENTENCES[:2]


def test_a_pause_inside_a_turn_ends_a_final_when_asked() -> None:
    phrases = ["so the pain comes and goes", "mostly in the evening", "after dinner really"]
    _, _, unsplit = _turn(phrases, StreamOptions(language="en", long_sentence=None), gap=0.35)
    assert [f.text for _, f in unsplit] == [" ".join(phrases)]
    _, _, split = _turn(phrases, StreamOptions(language="en", long_sentence=None,
                                               pause_split=0.3), gap=0.35)
    assert [f.text for _, f in split] == phrases


def test_a_long_buffer_ends_a_final_at_a_pause_without_a_sentence_end() -> None:
    """Whisper leaves some sentence ends unpunctuated; with ``long_sentence`` a pause that many
    seconds into the buffer cuts it anyway, between phrases, never inside one."""
    phrases = ["so the pain comes and goes most days", "mostly in the evening after dinner",
               "and then it eases off by the morning", "unless I have eaten something spicy"]
    _, _, held = _turn(phrases, StreamOptions(language="en", long_sentence=None), gap=0.3)
    assert [f.text for _, f in held] == [" ".join(phrases)]
    _, _, cut = _turn(phrases, StreamOptions(language="en", long_sentence=3.0), gap=0.3)
    texts = [f.text for _, f in cut]
    assert " ".join(texts) == " ".join(phrases) and len(texts) >= 3, texts
    starts = {" ".join(phrases[i:]) for i in range(len(phrases))}
    assert all(" ".join(texts[i:]) in starts for i in range(len(texts)))  # cut between phrases


def _identified(recogniser: Scripted) -> list[tuple[str, float]]:
    """(kind, window seconds) of each decode that identified its language."""
    return [(kind, end - begin) for (kind, language), (_, begin, end, _) in
            zip(recogniser.languages, recogniser.calls, strict=True) if language is None]


def test_an_interpreter_turn_identifies_its_language_once() -> None:
    """Language identification (an encoder pass) settles a turn's language once, on its first
    ``IDENTIFY_AFTER`` seconds, in a partial (the first partial guesses it on what it has, and
    the partial at ``GUESS_AGAIN`` seconds again): the turn's finals are decoded in that
    language, and it adds nothing to them."""
    _, recogniser, finals = _turn(SENTENCES[:4], StreamOptions(languages=("en", "es")))
    assert len(finals) == 4
    asked = [language for kind, language in recogniser.languages if kind != "partial"]
    assert asked == ["en", "en", "en", "en"]
    identified = _identified(recogniser)
    assert [kind for kind, _ in identified] == ["partial", "partial", "partial"]
    # The first partial's guess, again at GUESS_AGAIN, and the turn's language settled.
    assert identified[0][1] < GUESS_AGAIN - 0.01 < identified[1][1] < IDENTIFY_AFTER - 0.01 \
        < identified[2][1]
    # A turn too short for that is identified by its final.
    _, short, _ = _turn(["Yes."], StreamOptions(languages=("en", "es")))
    assert [language for kind, language in short.languages if kind != "partial"] == [None]
    # The finals hear the turn before them, nothing from before the turn (the other party).
    starts = [begin for kind, begin, _, _ in recogniser.calls if kind != "partial"]
    assert starts[0] == pytest.approx(0.3) and min(starts) == pytest.approx(0.3)
    assert starts[1] < finals[1][1].start


def test_a_sentence_cut_from_a_turn_too_early_does_not_settle_its_language() -> None:
    """The first sentence of a turn, final after 2.4 s, is identified on what it has, but the
    turn's language is settled only once ``IDENTIFY_AFTER`` seconds of it identify it: the
    first 2 s of real Portuguese can sound English to Whisper (benchmarks/language_id.py)."""
    _, recogniser, finals = _turn(["My chest hurts so much.", *SENTENCES[:3]],
                                  StreamOptions(languages=("en", "es")))
    assert finals[0][1].text == "My chest hurts so much."
    identified = _identified(recogniser)
    assert [kind for kind, _ in identified] == ["partial", "partial", "thorough", "partial",
                                                "partial"]
    assert identified[2][1] < IDENTIFY_AFTER - 0.01 < identified[4][1]
    last = max(i for i, (_, language) in enumerate(recogniser.languages) if language is None)
    assert all(language == "en" for _, language in recogniser.languages[last + 1:])


def test_an_interpreter_turn_waits_for_its_first_guess_before_its_first_partial() -> None:
    """Half a second of speech does not tell Whisper its language: where the stream identifies
    it, a turn's first partial (which guesses it) waits for ``first_guess`` seconds."""
    def first_partial(options: StreamOptions) -> float:
        _, recogniser, _ = _turn(SENTENCES[:1], options)
        return next(end - begin for kind, begin, end, _ in recogniser.calls if kind == "partial")

    interpreter = StreamOptions(languages=("en", "es"))
    assert first_partial(StreamOptions(language="en")) < interpreter.first_guess
    assert first_partial(interpreter) >= interpreter.first_guess - 1e-6
    assert first_partial(replace(interpreter, first_guess=1.5)) >= 1.5 - 1e-6


def test_identification_discounts_english_against_the_other_party() -> None:
    """Whisper favours English on a second or two of speech: with English among the
    candidates its probability is divided by ``english_discount`` before one is picked."""
    ranked = [("en", 0.6), ("es", 0.2), ("pt", 0.15)]
    assert pick_language(ranked, ("en", "pt"), 5.0) == "pt"  # 0.12 < 0.15
    assert pick_language(ranked, ("en", "pt"), 1.0) == "en"  # the model's own pick
    assert pick_language([("en", 0.9), ("pt", 0.1)], ("en", "pt"), 5.0) == "en"  # sure of it
    assert pick_language(ranked, ("es", "pt"), 5.0) == "es"  # no English among them
    assert pick_language(ranked, ("en",), 5.0) == "en"
    assert pick_language(ranked, ("de", "fr"), 5.0) == "de"  # none known: the first


class _Identifies:
    """A multilingual recogniser that hears no words and always ranks English first."""

    multilingual = True

    def detect_language(self, audio: np.ndarray, *, vad_filter: bool = True
                        ) -> list[tuple[str, float]]:
        return [("en", 0.6), ("pt", 0.3), ("es", 0.1)]

    def transcribe_windows(self, windows: list[np.ndarray], options: TranscribeOptions,
                           **kwargs: Any) -> list[list[Segment]]:
        return [[] for _ in windows]


@pytest.mark.parametrize(("discount", "picked"), [(5.0, "pt"), (1.0, "en")])
def test_an_interpreter_stream_identifies_with_its_english_discount(discount: float,
                                                                    picked: str) -> None:
    words = monologue(["Sim, eu tomo aspirina todos os dias."])
    stream = Scripted(words, 0.3, words[-1].end + 0.5).open_stream(
        StreamOptions(languages=("en", "pt"), english_discount=discount))
    languages: list[str] = []

    def decode(job: DecodeJob) -> tuple[list[Segment], str]:
        result = decode_jobs(_Identifies(), [job])[0]  # type: ignore[arg-type]
        languages.append(result[1])
        return result

    stream_silence(stream, decode, words[-1].end + 2)
    assert languages and set(languages) == {picked}


def test_stream_options_refuse_a_pause_split_as_long_as_the_end_of_utterance() -> None:
    with pytest.raises(ValueError, match="pause_split"):
        StreamOptions(pause_split=0.5, min_silence_ms=500)
    with pytest.raises(ValueError, match="trim_after"):
        StreamOptions(trim_after=-1)
    with pytest.raises(ValueError, match="long_sentence"):
        StreamOptions(long_sentence=1.0)
    with pytest.raises(ValueError, match="first_guess"):
        StreamOptions(first_guess=5.0)
    with pytest.raises(ValueError, match="english_discount"):
        StreamOptions(english_discount=0.0)
    with pytest.raises(ValueError, match="context_gap"):
        StreamOptions(context_gap=-0.1)


class _Flags:
    """A recogniser that records the ``fallback`` and ``context`` of each call and hears
    nothing."""

    multilingual = False

    def __init__(self) -> None:
        self.fallbacks: list[tuple[int, bool]] = []
        self.contexts: list[int | None] = []

    def detect_language(self, audio: np.ndarray, *, vad_filter: bool = True
                        ) -> list[tuple[str, float]]:
        return [("en", 1.0)]

    def transcribe_windows(self, windows: Any, options: TranscribeOptions, *,
                           fallback: bool = True, context: int | None = None
                           ) -> list[list[Segment]]:
        self.fallbacks.append((len(windows), fallback))
        self.contexts.append(context)
        return [[] for _ in windows]


def test_finals_use_the_temperature_fallback_unless_a_stream_turns_it_off() -> None:
    audio = np.zeros(16000, np.float32)
    kinds: list[tuple[JobKind, StreamOptions]] = [
        ("final", StreamOptions(language="en")),
        ("final", StreamOptions(language="en", final_fallback=False)),
        ("partial", StreamOptions(language="en"))]
    jobs = [DecodeJob(OnlineTranscriber(options), kind, _Utterance(0, 0, onset=0), audio,
                      options.decode_options(kind, "en")) for kind, options in kinds]
    recogniser = _Flags()
    decode_jobs(recogniser, jobs)
    assert sorted(recogniser.fallbacks) == [(1, False), (1, False), (1, True)]
    decode_jobs(recogniser, jobs[:1])
    assert recogniser.fallbacks[-1] == (1, True)


def test_a_final_window_shorter_than_whispers_encodes_less_and_hurrying_caps_it() -> None:
    audio = np.zeros(16000, np.float32)
    options = [StreamOptions(language="en"), StreamOptions(language="en", final_window=15)]
    jobs = [DecodeJob(OnlineTranscriber(o), "final", _Utterance(0, 0, onset=0), audio,
                      o.decode_options("final", "en")) for o in options]
    recogniser = _Flags()
    decode_jobs(recogniser, jobs)
    assert sorted(recogniser.contexts, key=str) == [1500, None]
    recogniser.contexts.clear()
    decode_jobs(recogniser, jobs, hurry=True)
    assert sorted(recogniser.contexts, key=str) == [1500, 2000]
    with pytest.raises(ValueError, match="final_window"):
        StreamOptions(final_window=5)


def test_the_decode_after_a_pause_is_the_sentences_final_when_it_ends_one() -> None:
    """With ``final_at_pause`` (the default) the partial after a pause is decoded as a final
    is, and the sentence it ends needs no decode of its own: each sentence of the turn comes
    from such a decode; without it, each is decoded again after the partial that found it."""
    _, recogniser, finals = _turn(SENTENCES, StreamOptions(language="en"))
    kinds = [kind for kind, *_ in recogniser.calls]
    assert [f.text for _, f in finals] == SENTENCES
    # An early final in each pause (0.2 s into it) is the sentence's final once the speaker
    # goes on, and the one after the turn its last final: no other decode as a final.
    assert kinds.count("final") == 0
    assert kinds.count("thorough") == len(SENTENCES)
    _, slower, before = _turn(SENTENCES, StreamOptions(language="en", final_at_pause=False,
                                                       early_final=None))
    assert [f.text for _, f in before] == SENTENCES
    assert [kind for kind, *_ in slower.calls].count("final") == len(SENTENCES)
    assert "thorough" not in [kind for kind, *_ in slower.calls]
    # One decode sooner: every sentence's final comes no later than without it.
    assert all(now <= then for (now, _), (then, _) in zip(finals, before, strict=True))
    assert [f.end for _, f in finals] == [f.end for _, f in before]


class _Turns:
    """A VAD that hears speech in the given (start, end) spans, in seconds."""

    def __init__(self, spans: list[tuple[float, float]]) -> None:
        self.events = [VadEvent(kind, round(at * 16000))
                       for begin, end in spans for kind, at in (("onset", begin),
                                                                ("offset", end))]
        self.fed = 0
        self.silent_since: int | None = None
        """No silence is heard inside a span."""

    @property
    def position(self) -> int:
        return self.fed

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        begin, self.fed = self.fed, self.fed + len(samples)
        return [e for e in self.events if begin <= e.sample < self.fed]


def _hesitation(silence: float, options: StreamOptions) -> list[tuple[float, Segment]]:
    """"I do take" then ``silence`` seconds (the VAD ends speech after 0.5 s), then the rest
    of the sentence: the finals, each with the audio received when it came."""
    first = monologue(["I do take"], start=0.5)
    rest = monologue(["medications for my blood pressure."], start=first[-1].end + silence)
    words = first + rest
    recogniser = Scripted(words, 0.3, rest[-1].end + 0.3)
    stream = OnlineTranscriber(options)
    stream.vad = _Turns([(0.3, first[-1].end + 0.1),  # type: ignore[assignment]
                         (rest[0].start - 0.1, rest[-1].end + 0.1)])
    updates = stream_silence(stream, lambda job: recogniser.decode([job])[0],
                             rest[-1].end + 2)
    return [(at, u.segment) for at, u in updates if u.segment.is_final]


def test_an_utterance_that_trails_off_waits_for_the_speaker_to_go_on() -> None:
    """With ``trailing_hold``, a hesitation longer than the silence that ends an utterance
    does not split a sentence whose first part trails off; a longer one still ends it, that
    much later."""
    whole = "I do take medications for my blood pressure."
    split = _hesitation(1.0, StreamOptions(language="en"))
    assert [f.text for _, f in split] == ["I do take", "medications for my blood pressure."]
    held = _hesitation(1.0, StreamOptions(language="en", trailing_hold=1.5))
    assert [f.text for _, f in held] == [whole]
    late = _hesitation(3.0, StreamOptions(language="en", trailing_hold=1.5))
    assert [f.text for _, f in late] == ["I do take", "medications for my blood pressure."]
    assert late[0][0] >= split[0][0] + 1.5  # it waited for the hold
    assert late[0][1].end == pytest.approx(split[0][1].end)  # and ends where the VAD said
    with pytest.raises(ValueError, match="trailing_hold"):
        StreamOptions(trailing_hold=-1)


def test_recent_audio_gives_the_range_asked_from_the_pieces_it_holds() -> None:
    rng = np.random.default_rng(7)
    recent = RecentAudio(keep=5000)
    stream = np.zeros(0, np.float32)
    for size in rng.integers(1, 1500, size=40):
        piece = rng.standard_normal(size).astype(np.float32)
        recent.add(piece)
        stream = np.concatenate([stream, piece])
        held_from = recent.end - sum(len(p) for p in recent._pieces)
        assert recent.end - held_from >= min(recent.keep, recent.end)
        for _ in range(5):
            sample = int(rng.integers(0, recent.end + 1))
            seconds = float(rng.uniform(0, 0.5))
            begin = max(held_from, sample - round(seconds * SAMPLE_RATE))
            expected = stream[begin:sample] if begin < sample else stream[:0]
            assert np.array_equal(recent.before(sample, seconds), expected)
