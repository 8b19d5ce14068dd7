"""Long and bad input never loses work: a text longer than the model reads is translated in
pieces (its sentences, then word-boundary pieces) and joined, the limit being read from the
model itself; a text the engine fails on becomes that text's ``error`` (a line's record in
``medstream translate``, an error note on a segment's translation in the transcribe cascade
and on a live final), and every other text is still translated.

The model is a tiny, randomly initialised Marian model built here in a few seconds, whose
``max_position_embeddings`` is 256 and whose tokenizer states no ``model_max_length``: before
this, a 1,400-character line made ``medstream translate --input`` fail with "No position
encodings are defined for positions >= 256" and write nothing of the file.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from speech.types import Segment, TranscriptionInfo
from streaming.batch.writers import FAILED_TRANSLATION, render_json, render_srt, render_txt
from streaming.cli.app import app
from streaming.cli.translation import translate_file
from streaming.document import SourceFile, TranscriptDocument
from streaming.enrich import SegmentEnrichment, TranslationTarget
from streaming.live.protocol import Final
from streaming.translation import TextTranslation
from tests.mt_families import FALLBACK_LINES, training_lines
from translate.backends.base import DecodeRequest, DecodeSettings, Hypothesis, MTBackend
from translate.backends.ct2 import CTranslate2Backend, position_limit
from translate.catalog import load_mt
from translate.failures import each_or_failure, failure_message
from translate.pieces import (
    join_pieces,
    sentence_spans,
    split_text,
    translate_in_pieces,
    within,
    word_pieces,
)
from translate.translator import Terminology, Translator
from translate.types import GlossaryEntry, TranslateOptions, Translation

POSITIONS = 256
"""The tiny model's ``max_position_embeddings``."""
FAIL_MARK = "Zyxwv"
"""A text holding this word makes :class:`FailingBackend` fail."""
SENTENCES = list(FALLBACK_LINES[::2])
"""German sentences the model's SentencePiece was trained on."""


def _long_line(characters: int) -> str:
    """:data:`SENTENCES` over and over, cut at ``characters``."""
    text, index = "", 0
    while len(text) < characters:
        text += SENTENCES[index % len(SENTENCES)] + " "
        index += 1
    return text[:characters].rstrip()


@pytest.fixture(scope="module")
def tiny_marian_256(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random de→en Marian model (transformers directory ``hf`` and CTranslate2 ``ct2``)
    with 256 positions and a tokenizer that does not state its maximum length."""
    import torch
    from transformers import MarianMTModel

    from recipes.mt import tiny_marian as recipe

    root = tmp_path_factory.mktemp("marian-256")
    recipe.train_sentencepiece(training_lines(limit=200), root / "joint.spm", 600, 1)
    hf_dir = root / "hf"
    tokenizer = recipe.write_tokenizer(root / "joint.spm", hf_dir)
    config_file = hf_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.pop("model_max_length", None)
    config_file.write_text(json.dumps(config), encoding="utf-8")
    settings = recipe.TinyMarianConfig(d_model=32, encoder_layers=1, decoder_layers=1,
                                       heads=2, ffn_dim=64)
    model_config = recipe.marian_config(settings, len(tokenizer.get_vocab()))
    model_config.max_position_embeddings = POSITIONS
    torch.manual_seed(0)
    model = MarianMTModel(model_config)
    recipe.zero_pad_row(model)
    model.save_pretrained(str(hf_dir))
    recipe.convert(hf_dir, root / "ct2", None)
    return root


@pytest.fixture(scope="module")
def backend(tiny_marian_256: Path) -> MTBackend:
    return load_mt(str(tiny_marian_256 / "ct2"))


class FailingBackend(MTBackend):
    """The tiny model, except that any batch holding a source with :data:`FAIL_MARK` fails
    (as an engine does on input it cannot handle)."""

    def __init__(self, inner: MTBackend) -> None:
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.max_source_tokens = inner.max_source_tokens
        self.identifier = f"failing {inner.identifier}"
        self.sources: list[int] = []
        """The length of every source decoded, in tokens."""

    def generate(self, requests: Sequence[DecodeRequest],
                 settings: DecodeSettings) -> list[list[Hypothesis]]:
        for request in requests:
            self.sources.append(len(request.source))
            if FAIL_MARK in self.tokenizer.detokenize(request.source):
                raise RuntimeError("the engine cannot translate this")
        return self.inner.generate(requests, settings)


# ------------------------------------------------------------------ the limit, from the model

def test_the_limit_is_read_from_the_model(tiny_marian_256: Path, backend: MTBackend) -> None:
    config = json.loads((tiny_marian_256 / "hf" / "tokenizer_config.json").read_text("utf-8"))
    assert "model_max_length" not in config
    assert position_limit(tiny_marian_256 / "ct2" / "model.bin") == POSITIONS
    assert isinstance(backend, CTranslate2Backend)
    assert backend.max_source_tokens == POSITIONS
    hf = load_mt(str(tiny_marian_256 / "hf"), backend="transformers")
    assert hf.max_source_tokens == POSITIONS


def test_an_unreadable_model_file_gives_no_limit(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"\x06\x00\x00\x00\x05\x00Tra")
    assert position_limit(tmp_path / "model.bin") is None
    assert position_limit(tmp_path / "absent.bin") is None


# ------------------------------------------------------------------ cutting and joining

def _covers(text: str, spans: Sequence[tuple[int, int]]) -> bool:
    """Spans in order, not overlapping, and every non-space character in one of them."""
    covered = [False] * len(text)
    previous_end = 0
    for start, end in spans:
        if start < previous_end or end <= start:
            return False
        covered[start:end] = [True] * (end - start)
        previous_end = end
    return all(covered[i] or text[i].isspace() for i in range(len(text)))


def test_sentences_keep_order_and_cover_the_text() -> None:
    text = ("Dr. Smith saw the patient on 2.5.2024. He has had fever for 3 days! Is it bad? "
            "Yes… e.g. the cough.\nTake 2.5 mg now.「次の文。」最後です")
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == [
        "Dr. Smith saw the patient on 2.5.2024.", "He has had fever for 3 days!",
        "Is it bad?", "Yes… e.g. the cough.", "Take 2.5 mg now.「次の文。」", "最後です"]
    assert _covers(text, spans)
    rng = random.Random(7)
    for _ in range(200):
        words = [rng.choice(["a", "Dr.", "b.", "C", "x?", "y!", "…", "\n", "z.\n", "e.g.",
                             "Ab", " ", "1.5", "。"]) for _ in range(rng.randrange(1, 30))]
        sample = " ".join(words)
        assert _covers(sample, sentence_spans(sample))


def test_a_sentence_end_inside_a_kept_span_is_not_one() -> None:
    text = "Seen by Dr. J. Smith. Then home."
    name = text.index("J. Smith")
    assert sentence_spans(text, keep=[(name, name + len("J. Smith."))]) == [(0, 21), (22, 32)]
    assert sentence_spans("Take Vit. C daily. Rest.", keep=[(5, 11)]) == [(0, 18), (19, 24)]


def test_pieces_fit_and_cover_the_text() -> None:
    fits = within(6, lambda piece: len(piece.split()))
    rng = random.Random(3)
    for _ in range(100):
        words = [rng.choice(["word", "a", "longer-word", "x."])
                 for _ in range(rng.randrange(1, 60))]
        text = " ".join(words)
        pieces = split_text(text, fits)
        assert _covers(text, pieces)
        assert all(fits(text[s:e]) for s, e in pieces)
    assert word_pieces("abcdefghij", 0, 10, within(4, len)) == [(0, 4), (4, 8), (8, 10)]
    text = "one two three four five"
    assert word_pieces(text, 0, len(text), within(2, lambda p: len(p.split())),
                       keep=[(4, 13)]) == [(0, 3), (4, 13), (14, 23)]


def test_join_keeps_line_breaks_and_spaceless_languages() -> None:
    text = "One. Two.\nThree."
    spans = sentence_spans(text)
    assert join_pieces(text, spans, ["Eins.", "", "Drei."], "de") == "Eins.\nDrei."
    assert join_pieces(text, spans, ["Eins.", "Zwei.", "Drei."], "de") == \
        "Eins. Zwei.\nDrei."
    assert join_pieces("A. B.", [(0, 2), (3, 5)], ["一。", "二。"], "zh") == "一。二。"


def test_any_text_engine_translates_in_pieces() -> None:
    seen: list[str] = []

    def engine(texts: list[str]) -> list[str]:
        seen.extend(texts)
        return [t.upper() for t in texts]

    fits = within(4, lambda piece: len(piece.split()))
    texts = ["short one", "One two three. Four five six seven eight nine ten eleven.", ""]
    assert translate_in_pieces(texts, engine, fits, "en") == [
        "SHORT ONE", "ONE TWO THREE. FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN.", ""]
    assert all(fits(piece) for piece in seen)


def test_failures_stay_with_their_items() -> None:
    def run(batch: Sequence[int]) -> list[int]:
        if 3 in batch:
            raise RuntimeError("three\nmore detail")
        return [2 * i for i in batch]

    found = each_or_failure([1, 2, 3, 4], run)
    assert found[:2] == [2, 4] and found[3] == 8
    assert isinstance(found[2], RuntimeError)
    assert failure_message(found[2]) == "RuntimeError: three"
    assert isinstance(each_or_failure([5], lambda batch: [])[0], ValueError)


# ------------------------------------------------------------------ the translator

def test_a_long_text_is_translated_in_pieces_that_fit(backend: MTBackend) -> None:
    failing = FailingBackend(backend)
    text = _long_line(5000)
    (result,) = Translator(failing, Terminology(numbers=False)).translate(
        [text], "de", "en", TranslateOptions(terms="none", beam_size=1))
    assert result.error is None and result.text and result.source_text == text
    assert len(failing.sources) > 5
    assert max(failing.sources) <= POSITIONS


def test_terms_of_every_piece_are_reported_and_forced(backend: MTBackend) -> None:
    glossary = [GlossaryEntry("Fieber", "pyrexia"), GlossaryEntry("Kopfschmerzen", "cephalea")]
    translator = Translator(backend, Terminology(glossary, numbers=False))
    text = _long_line(3000)
    assert text.count("Fieber") > 3 and text.count("Kopfschmerzen") > 3
    (hard,) = translator.translate([text], "de", "en", TranslateOptions(beam_size=1))
    assert [(u.source, u.target) for u in hard.terms] == [("Fieber", "pyrexia"),
                                                          ("Kopfschmerzen", "cephalea")]
    assert all(u.satisfied and u.forced for u in hard.terms)
    assert hard.text.count("pyrexia") >= text.count("Fieber")
    assert hard.text.count("cephalea") >= text.count("Kopfschmerzen")
    (free,) = translator.translate([text], "de", "en",
                                   TranslateOptions(terms="none", beam_size=1))
    assert len(free.terms) == 2 and not any(u.forced or u.satisfied for u in free.terms)


# ------------------------------------------------------------------ medstream translate

def test_every_line_of_the_file_is_written(backend: MTBackend) -> None:
    failing = FailingBackend(backend)
    lines = [SENTENCES[0], _long_line(5000), f"Der {FAIL_MARK} Befund.", SENTENCES[1], ""]
    sink = io.StringIO()
    failed = translate_file(Translator(failing), io.StringIO("\n".join(lines) + "\n"), sink,
                            False, "de", "en", TranslateOptions(terms="none", beam_size=1))
    records = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert failed == 1
    assert [r["text"] for r in records] == lines
    assert records[2]["error"].startswith("translation failed: RuntimeError: the engine")
    assert "translation" not in records[2]
    for index in (0, 1, 3):
        assert "error" not in records[index] and records[index]["translation"]
    assert records[4]["translation"] == ""


def test_the_reported_line_no_longer_loses_the_file(tiny_marian_256: Path,
                                                     tmp_path: Path) -> None:
    lines = [SENTENCES[0], _long_line(1400), SENTENCES[2]]
    source = tmp_path / "input.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["translate", "--model", str(tiny_marian_256 / "ct2"),
                                      "--from", "de", "--to", "en", "--input", str(source),
                                      "--output", str(output), "--beam-size", "1"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert [r["text"] for r in records] == lines
    assert all(r["translation"] and "error" not in r for r in records)


# ------------------------------------------------------------------ cascade and live

def _segments(texts: Sequence[str]) -> list[Segment]:
    return [Segment(i, float(i), float(i + 1), text, language="de")
            for i, text in enumerate(texts)]


def test_the_cascade_notes_a_failed_segment_and_goes_on(backend: MTBackend) -> None:
    cascade = TextTranslation(Translator(FailingBackend(backend)), TranslationTarget("en"),
                              TranslateOptions(terms="none", beam_size=1))
    segments = _segments([SENTENCES[0], f"Ein {FAIL_MARK}.", _long_line(2000), SENTENCES[3]])
    found = SegmentEnrichment(translator=cascade).translate(segments, "de")
    assert found is not None
    failed = found[1]
    assert failed is not None and failed.text == "" and failed.error is not None
    assert failed.error.startswith("RuntimeError") and failed.source_text == segments[1].text
    for index in (0, 2, 3):
        translation = found[index]
        assert translation is not None and translation.text and translation.error is None
    stored = failed.to_dict()
    assert stored["error"] == failed.error and Translation.from_dict(stored) == failed
    assert "error" not in found[0].to_dict()  # type: ignore[union-attr]


def test_the_transcript_keeps_the_error_note(backend: MTBackend) -> None:
    """The batch job's path: the json carries the error on the failed segment's translation
    and reads it back; txt and srt mark the failed translation."""
    cascade = TextTranslation(Translator(FailingBackend(backend)), TranslationTarget("en"),
                              TranslateOptions(terms="none", beam_size=1))
    segments = tuple(_segments([SENTENCES[0], f"Ein {FAIL_MARK}."]))
    info = TranscriptionInfo(language="de", language_probability=1.0, duration=2.0,
                             duration_after_vad=2.0, task="transcribe", model="test")
    doc = SegmentEnrichment(translator=cascade).translate_document(
        TranscriptDocument(SourceFile("a.wav", 1, "0" * 64), info, segments, "f" * 16), None)
    data = json.loads(render_json(doc))
    ok, failed = (segment["translation"] for segment in data["segments"])
    assert ok["text"] and "error" not in ok
    assert failed["text"] == "" and failed["error"].startswith("RuntimeError")
    assert TranscriptDocument.from_json(render_json(doc)) == doc
    assert f"[en] {FAILED_TRANSLATION}" in render_txt(doc)
    assert FAILED_TRANSLATION in render_srt(doc)


def test_a_live_final_that_cannot_be_translated_gets_an_error_note(
        backend: MTBackend) -> None:
    """What the live engine does with each final (``SegmentEnrichment.enrich``, then the
    final's ``translation`` field): the failed final still carries its text, its
    translation an error note, and the session's next final is translated."""
    cascade = TextTranslation(Translator(FailingBackend(backend)),
                              TranslationTarget(parties=("de", "en")),
                              TranslateOptions(terms="none", beam_size=1))
    enrichment = SegmentEnrichment(translator=cascade)
    for segment in _segments([f"Ein {FAIL_MARK}.", SENTENCES[4]]):
        (enriched,) = enrichment.enrich([segment], "de")
        translation = enriched.translation
        assert translation is not None
        final = Final(utterance=segment.id, segment=segment.id, start=segment.start,
                      end=segment.end, text=segment.text, language="de", words=[],
                      entities=None, translation=translation.to_dict(), audio_time=1.0)
        sent: Any = json.loads(final.model_dump_json())
        assert sent["text"] == segment.text
        if FAIL_MARK in segment.text:
            assert sent["translation"]["text"] == ""
            assert re.match(r"RuntimeError: ", sent["translation"]["error"])
        else:
            assert sent["translation"]["text"] and "error" not in sent["translation"]
