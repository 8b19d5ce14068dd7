"""Shared fixtures. Tests never touch the network: the hub is switched off before any import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MEDSTREAM_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
SPEECH = SHARED_DATA / "speech"
WMT23 = SHARED_DATA / "mt" / "wmt23_terminology" / "wmt23_terminology.de-en.jsonl"
TICO_TERMS = SHARED_DATA / "terms" / "tico19_terms.en-de_fr_es_vi_zh.tsv"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    os.environ["MEDSTREAM_CACHE"] = str(tmp_path_factory.mktemp("medstream-cache"))
    yield


def read_manifest(folder: str) -> list[dict[str, Any]]:
    """Rows of ``../shared/data/speech/<folder>/manifest.jsonl``; skips the test when absent."""
    path = SPEECH / folder / "manifest.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared speech data is not on this machine")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    for row in rows:
        row["path"] = path.parent / row["audio_filepath"]
    return rows


@pytest.fixture(scope="session")
def tiny_en() -> Any:
    """The packaged English-only Whisper tiny.en, loaded once for the whole session."""
    from speech import load_asr

    return load_asr("tiny.en")


@pytest.fixture(scope="session")
def base_model() -> Any:
    """The packaged multilingual Whisper base, loaded once for the whole session."""
    from speech import load_asr

    return load_asr("base")


def speak(text: str, path: Path, voice: str = "en-us", words_per_minute: int = 150) -> Path:
    """Synthesise ``text`` to a WAV file with espeak-ng (skips the test if it is missing)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; .ci/run does)")
    subprocess.run([exe, "-v", voice, "-s", str(words_per_minute), "-w", str(path), text],
                   check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 1-layer BERT tagger with the packaged encoder's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from ner.encoder import resolve_encoder
    from ner.schema import EntityType, iob2_labels

    labels = iob2_labels([EntityType.MEDICATION, EntityType.MEDICAL_CONDITION,
                          EntityType.ANATOMY])

    folder = tmp_path_factory.mktemp("tiny-tagger")
    config = BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=1, intermediate_size=16,
                        id2label=dict(enumerate(labels)),
                        label2id={label: i for i, label in enumerate(labels)})
    BertForTokenClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_encoder().path).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_marian(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A small de→en Marian model trained here (2–3 minutes on 2 CPU cores) from the shared
    medical parallel text, converted to CTranslate2: a ``TinyMarianResult`` whose ``ct2_dir``
    loads like any OPUS-MT conversion. Built once per session; skips without the shared data."""
    from recipes.mt.tiny_marian import DATA_DIR, MEDLINE_FILES, WMT23_FILE, build_tiny_marian

    needed = [DATA_DIR / WMT23_FILE, *(DATA_DIR / name for name in MEDLINE_FILES)]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} absent: the shared MT data is not on this machine")
    return build_tiny_marian(tmp_path_factory.mktemp("tiny-marian"))
