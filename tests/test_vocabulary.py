"""Medical vocabulary: term lists in several layouts, and biasing that recognises drug names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from speech.audio import load_audio
from speech.errors import VocabularyError
from speech.options import TranscribeOptions
from speech.vocabulary import hotwords, load_vocabulary
from tests.conftest import SHARED_DATA, speak

DRUGS = ("metoprolol", "lisinopril", "amoxicillin", "levothyroxine", "atorvastatin",
         "clopidogrel", "pantoprazole", "empagliflozin", "glipizide")
SENTENCES = (
    "The patient was started on metoprolol twenty five milligrams twice daily.",
    "Please continue lisinopril ten milligrams every morning.",
    "She is allergic to amoxicillin and takes levothyroxine.",
    "We will prescribe atorvastatin forty milligrams at night.",
    "He takes clopidogrel and pantoprazole after the stent.",
    "Start empagliflozin and stop glipizide because of hypoglycemia.",
)


def test_plain_list_with_comments_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "terms.txt"
    path.write_text("# cardiology\nMetoprolol\n\nlisinopril\nmetoprolol\n")
    assert load_vocabulary(path) == ("Metoprolol", "lisinopril")


def test_tsv_glossary_takes_the_source_term_column() -> None:
    glossary = SHARED_DATA / "terms" / "tico19_terms.en-de_fr_es_vi_zh.tsv"
    if not glossary.is_file():
        pytest.skip(f"{glossary} is absent")
    terms = load_vocabulary(glossary)
    # 3,205 pairs over five target languages; each English term is kept once.
    assert 500 < len(terms) < 3205
    assert len({t.casefold() for t in terms}) == len(terms)


def test_csv_without_a_known_header_uses_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "terms.csv"
    path.write_text("drug,class\nclopidogrel,antiplatelet\npantoprazole,PPI\n")
    assert load_vocabulary(path) == ("clopidogrel", "pantoprazole")


def test_unusable_vocabulary_files(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match="does not exist"):
        load_vocabulary(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    with pytest.raises(VocabularyError, match="contains no terms"):
        load_vocabulary(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("Paracétamol".encode("latin-1"))
    with pytest.raises(VocabularyError, match="UTF-8"):
        load_vocabulary(tmp_path / "latin1.txt")


def test_hotwords_keep_whole_terms_within_the_prompt_budget() -> None:
    terms = tuple(f"term{i:03d}" for i in range(200))
    prompt = hotwords(terms, max_chars=60)
    assert prompt is not None and len(prompt) <= 60
    assert all(part.startswith("term") and len(part) == 7 for part in prompt.split(", "))


def _drug_names_heard(model: Any, wavs: list[Path], vocabulary: tuple[str, ...]) -> int:
    heard = 0
    for wav in wavs:
        segments, _ = model.transcribe(load_audio(wav),
                                       TranscribeOptions(language="en", vocabulary=vocabulary))
        text = " ".join(s.text for s in segments).lower()
        heard += sum(1 for drug in DRUGS if re.search(rf"\b{drug}\b", text))
    return heard


def test_vocabulary_biasing_recognises_drug_names(tiny_en: Any, tmp_path: Path) -> None:
    wavs = [speak(s, tmp_path / f"s{i}.wav") for i, s in enumerate(SENTENCES)]
    without = _drug_names_heard(tiny_en, wavs, ())
    with_terms = _drug_names_heard(tiny_en, wavs, (*DRUGS, "hypoglycemia"))
    # measured with espeak-ng 1.51 (Debian 12) and tiny.en: 0 of 9 names without biasing,
    # 4 of 9 with it (metoprolol, lisinopril, levothyroxine, atorvastatin).
    assert with_terms >= without + 3
    assert with_terms >= 3
