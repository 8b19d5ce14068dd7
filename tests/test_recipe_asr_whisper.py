"""The Whisper ASR recipe: labels in Whisper's layout, a tiny model fine-tuned on real speech
with Seq2SeqTrainer, exported to CTranslate2 and used by `medstream transcribe --model PATH`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recipes.config import load_config
from recipes.whisper_common import (
    Example,
    SpeechCollator,
    WhisperRecipeConfig,
    label_ids,
    whisper_tokenizer,
)
from tests.conftest import SPEECH, read_manifest
from tests.whisper_recipes import run_recipe, transcribe_cli


def test_labels_follow_whisper_layout_and_padding_is_ignored(tmp_path: Path) -> None:
    tokenizer, reference = whisper_tokenizer("base")
    assert len(tokenizer) == 51865  # the multilingual vocabulary, timestamps included
    assert reference["lang_ids"][0] == tokenizer.convert_tokens_to_ids("<|en|>")
    ids = label_ids(tokenizer, Example(Path("a.wav"), "Take two tablets.", "es", "translate"),
                    448)
    assert tokenizer.convert_ids_to_tokens(ids[:4]) == [
        "<|startoftranscript|>", "<|es|>", "<|translate|>", "<|notimestamps|>"]
    assert ids[-1] == tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert tokenizer.decode(ids[4:-1]) == " Take two tablets."
    assert len(label_ids(tokenizer, Example(Path("a.wav"), "word " * 500, "en", "transcribe"),
                         32)) == 32

    start = ids[0]
    batch = SpeechCollator(start)([
        {"input_features": np.zeros((80, 3000), np.float32), "labels": ids},
        {"input_features": np.ones((80, 3000), np.float32), "labels": ids[:6]}])
    assert batch["input_features"].shape == (2, 80, 3000)
    assert batch["labels"].shape == (2, len(ids) - 1)  # <|startoftranscript|> dropped
    assert batch["labels"][1, 5:].tolist() == [-100] * (len(ids) - 6)

    config = tmp_path / "c.yaml"
    config.write_text("max_steps: 3\nd_model: 32\n", encoding="utf-8")
    loaded = load_config(WhisperRecipeConfig, config,
                         ["freeze_encoder=true", "learning_rate=1e-4"])
    assert (loaded.max_steps, loaded.d_model, loaded.freeze_encoder) == (3, 32, True)
    assert loaded.learning_rate == pytest.approx(1e-4)
    with pytest.raises(SystemExit, match="unknown config keys"):
        load_config(WhisperRecipeConfig, config, ["epochs=3"])


@pytest.mark.slow
def test_tiny_recipe_trains_exports_and_transcribes(tmp_path: Path) -> None:
    read_manifest("asterisk_prompts")  # skips without the shared speech
    output = tmp_path / "asr-whisper"
    report = run_recipe("asr_whisper", output)
    assert report["data"]["train"]["utterances"] >= 70
    assert report["steps"] == 40 and len(report["loss_curve"]) == 40
    assert report["loss_last"] < 0.8 * report["loss_first"], (report["loss_first"],
                                                               report["loss_last"])
    assert report["eval_loss_after"] < report["eval_loss_before"]
    (row,) = report["wer"]
    assert row["model"] == "fine-tuned" and row["utterances"] == 3 and row["wer"] >= 0
    assert row["signature"].startswith("wer|lang:en|norm:whisper-english")
    assert "| fine-tuned |" in (output / "report.md").read_text(encoding="utf-8")
    model = output / "model"
    assert {"model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"} <= {
        p.name for p in model.iterdir()}

    transcript = transcribe_cli(SPEECH / "pocketsphinx_testdata" / "goforward.wav", model,
                                tmp_path / "transcripts", "--language", "en")
    assert transcript["complete"] and transcript["model"].startswith(str(model))


@pytest.mark.slow
def test_decoder_only_fine_tuning_keeps_the_encoder_and_scores_the_start(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    read_manifest("pocketsphinx_testdata")  # skips without the shared speech
    output = tmp_path / "decoder-only"
    report = run_recipe("asr_whisper", output, "freeze_encoder=true", "max_steps=4",
                        "evaluate_init=true", "eval_utterances=1", "learning_rate=1e-2",
                        "train_manifests=[../shared/data/speech/pocketsphinx_testdata/"
                        "manifest.jsonl]")
    assert [r["model"] for r in report["wer"]] == ["before fine-tuning", "fine-tuned"]
    assert "decoder-only" in (output / "report.md").read_text(encoding="utf-8")
    before = load_file(output / "init-hf" / "model.safetensors")
    after = load_file(output / "model-hf" / "model.safetensors")
    encoder = [k for k in before if ".encoder." in k]
    decoder = [k for k in before if ".decoder." in k]
    assert encoder and all(before[k].equal(after[k]) for k in encoder)
    assert any(not before[k].equal(after[k]) for k in decoder)
