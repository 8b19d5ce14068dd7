"""Train a cache-aware streaming FastConformer (hybrid RNNT/CTC) for a language, then evaluate it
streaming at each of its look-aheads and export a ``.nemo`` that ``medstream serve`` streams.

Usage (from the repository root; see recipes/asr_nemo/README.md):

    .venv/bin/python recipes/asr_nemo/train.py --config recipes/asr_nemo/conf/tiny.yaml \\
        --output runs/asr-nemo-tiny
    .venv/bin/python recipes/asr_nemo/train.py --config recipes/asr_nemo/conf/full.yaml \\
        --output runs/asr-nemo-de --set language=de --set train_manifests=[data/de/train.jsonl]

Steps: 1. read the manifests (NeMo JSONL), check every entry (:mod:`recipes.manifests`) and
write the usable ones, with normalised text, to ``OUTPUT/manifests``; 2. train a SentencePiece
tokenizer on the training text (``OUTPUT/tokenizer``); 3. build the model from the config
(or start from a pretrained ``.nemo`` / hub model with its vocabulary replaced); 4. train with
PyTorch Lightning, recording the loss of every step; 5. export ``OUTPUT/model.nemo``;
6. stream every validation utterance through :class:`speech.backends.nemo_streaming.
NemoStreaming` at each look-ahead the model was trained for and write WER and the chunk
latency to ``OUTPUT/report.json`` and ``report.md``.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from eval.wer import error_rate
from recipes.config import repo_path, start
from recipes.manifests import (
    Entry,
    normalise_text,
    read_manifest,
    validate,
    write_manifest,
)

logger = logging.getLogger("recipes.asr_nemo")


@dataclass(frozen=True)
class RecipeConfig:
    """Every setting of a run (the YAML keys); recorded in ``report.json``."""

    language: str = "en"
    train_manifests: tuple[str, ...] = ()
    val_manifests: tuple[str, ...] = ()
    min_duration: float = 0.3
    max_duration: float = 20.0
    lowercase_text: bool = True
    """Train on normalised text (lower case, no punctuation)."""
    vocab_size: int = 128
    model: str = "hybrid"
    """"hybrid": RNNT with an auxiliary CTC head (the full recipe); "ctc": CTC only. NeMo's RNNT
    loss on CPU is interpreted Python (about 6 s per step of 8 short utterances on 2 cores), so
    the CPU-sized tiny config trains the CTC variant; both stream through the same backend."""
    init_from: str | None = None
    """A .nemo file or a hub name to fine-tune (its tokenizer is replaced); None: from scratch."""
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    subsampling_factor: int = 8
    conv_kernel_size: int = 9
    left_context: int = 42
    lookaheads: tuple[int, ...] = (0, 2)
    """Right contexts (encoder steps) trained together; each is evaluated."""
    pred_hidden: int = 64
    joint_hidden: int = 64
    ctc_loss_weight: float = 0.3
    rnnt_loss: str = "pytorch"
    """NeMo RNNT loss: "pytorch" (no compilation, fine for tiny runs) or "default" (numba)."""
    spec_augment: bool = True
    batch_size: int = 8
    max_steps: int = 60
    learning_rate: float = 2e-3
    warmup_steps: int = 10
    weight_decay: float = 1e-3
    accelerator: str = "cpu"
    devices: int = 1
    precision: str = "32-true"
    num_workers: int = 0
    seed: int = 0
    log_every: int = 10
    eval_utterances: int | None = None


@dataclass
class LossLog:
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def prepare(config: RecipeConfig, output: Path) -> dict[str, Any]:
    """Checked manifests in OUTPUT/manifests; returns counts and problems per split."""
    summary: dict[str, Any] = {}
    for split, sources in (("train", config.train_manifests), ("val", config.val_manifests)):
        if not sources:
            raise SystemExit(f"no {split}_manifests in the config")
        entries: list[Entry] = []
        problems: list[str] = []
        for source in sources:
            found, bad = read_manifest(repo_path(source))
            entries += [e for e in found if not e.lang or e.lang == config.language]
            problems += [p.reason for p in bad]
        good, bad_entries = validate(entries, min_duration=config.min_duration,
                                     max_duration=config.max_duration)
        problems += [f"{p.audio}: {p.reason}" for p in bad_entries]
        if config.lowercase_text:
            good = [Entry(e.audio_filepath, e.duration, normalise_text(e.text), e.lang, e.extra)
                    for e in good]
        good = [e for e in good if e.text]
        if not good:
            raise SystemExit(f"no usable {split} utterances; problems: {problems[:5]}")
        write_manifest(good, output / "manifests" / f"{split}.jsonl")
        summary[split] = {"utterances": len(good),
                          "hours": round(sum(e.duration for e in good) / 3600, 4),
                          "problems": problems}
        for problem in problems:
            logger.warning("%s: %s", split, problem)
    return summary


def train_tokenizer(config: RecipeConfig, output: Path) -> Path:
    """A SentencePiece BPE tokenizer in NeMo's layout (tokenizer.model, .vocab, vocab.txt)."""
    import sentencepiece as spm

    folder = output / "tokenizer"
    folder.mkdir(parents=True, exist_ok=True)
    texts = [json.loads(line)["text"] for line in
             (output / "manifests" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    corpus = folder / "text.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    letters = len(set("".join(texts)))
    vocab = max(config.vocab_size, letters + 4)
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "tokenizer"), vocab_size=vocab,
        model_type="bpe", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0,
        hard_vocab_limit=False, num_threads=2, minloglevel=2)
    pieces = [line.split("\t")[0] for line in
              (folder / "tokenizer.vocab").read_text(encoding="utf-8").splitlines()]
    (folder / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    return folder


def model_config(config: RecipeConfig, output: Path, tokenizer: Path) -> dict[str, Any]:
    """The NeMo model config: a cache-aware FastConformer with RNNT and auxiliary CTC."""
    dataset = {"sample_rate": 16000, "batch_size": config.batch_size,
               "num_workers": config.num_workers, "pin_memory": False,
               "max_duration": config.max_duration, "min_duration": config.min_duration,
               "use_start_end_token": False}
    contexts = [[config.left_context, r] for r in config.lookaheads]
    return {
        "sample_rate": 16000, "compute_eval_loss": False, "log_prediction": False,
        "skip_nan_grad": False,
        "model_defaults": {"enc_hidden": config.d_model, "pred_hidden": config.pred_hidden,
                           "joint_hidden": config.joint_hidden},
        "train_ds": {**dataset, "manifest_filepath": str(output / "manifests" / "train.jsonl"),
                     "shuffle": True},
        "validation_ds": {**dataset, "shuffle": False,
                          "manifest_filepath": str(output / "manifests" / "val.jsonl")},
        "tokenizer": {"dir": str(tokenizer), "type": "bpe"},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000, "normalize": "NA", "window_size": 0.025,
            "window_stride": 0.01, "window": "hann", "features": 80, "n_fft": 512,
            "log": True, "frame_splicing": 1, "dither": 0.00001, "pad_to": 0,
            "pad_value": 0.0},
        "spec_augment": {"_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
                         "freq_masks": 2, "time_masks": 4, "freq_width": 15,
                         "time_width": 0.05} if config.spec_augment else None,
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder", "feat_in": 80,
            "feat_out": -1, "n_layers": config.n_layers, "d_model": config.d_model,
            "subsampling": "dw_striding", "subsampling_factor": config.subsampling_factor,
            "subsampling_conv_channels": config.d_model, "causal_downsampling": True,
            "ff_expansion_factor": 4, "self_attention_model": "rel_pos",
            "n_heads": config.n_heads, "att_context_size": contexts,
            "att_context_probs": None, "att_context_style": "chunked_limited",
            "xscaling": True, "untie_biases": True, "pos_emb_max_len": 5000,
            "conv_kernel_size": config.conv_kernel_size, "conv_norm_type": "layer_norm",
            "conv_context_size": "causal", "dropout": 0.1, "dropout_pre_encoder": 0.1,
            "dropout_emb": 0.0, "dropout_att": 0.1},
        **head(config),
        "optim": {"name": "adamw", "lr": config.learning_rate, "betas": [0.9, 0.98],
                  "weight_decay": config.weight_decay,
                  "sched": {"name": "CosineAnnealing", "warmup_steps": config.warmup_steps,
                            "min_lr": config.learning_rate / 100,
                            "max_steps": config.max_steps}},
    }


def head(config: RecipeConfig) -> dict[str, Any]:
    """The decoder part of the model config: RNNT + auxiliary CTC, or CTC alone."""
    ctc_decoder: dict[str, Any] = {
        "_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": None,
        "num_classes": -1, "vocabulary": []}
    if config.model == "ctc":
        return {"decoder": ctc_decoder, "decoding": {"strategy": "greedy_batch"}}
    if config.model != "hybrid":
        raise SystemExit(f"model must be 'hybrid' or 'ctc', not {config.model!r}")
    return {
        "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder",
                    "normalization_mode": None, "random_state_sampling": False,
                    "blank_as_pad": True,
                    "prednet": {"pred_hidden": config.pred_hidden, "pred_rnn_layers": 1,
                                "t_max": None, "dropout": 0.1}},
        "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None,
                  "preserve_memory": False, "fuse_loss_wer": False,
                  "jointnet": {"joint_hidden": config.joint_hidden, "activation": "relu",
                               "dropout": 0.1}},
        "aux_ctc": {"ctc_loss_weight": config.ctc_loss_weight, "use_cer": False,
                    "ctc_reduction": "mean_batch",
                    "decoder": ctc_decoder,
                    "decoding": {"strategy": "greedy_batch"}},
        "decoding": {"strategy": "greedy_batch", "greedy": {"max_symbols": 10}},
        "loss": {"loss_name": config.rnnt_loss},
    }


def build_model(config: RecipeConfig, cfg: dict[str, Any], tokenizer: Path, trainer: Any
                ) -> Any:
    from nemo.collections.asr.models import (
        ASRModel,
        EncDecCTCModelBPE,
        EncDecHybridRNNTCTCBPEModel,
    )
    from omegaconf import OmegaConf

    if config.init_from is None:
        kind = EncDecCTCModelBPE if config.model == "ctc" else EncDecHybridRNNTCTCBPEModel
        return kind(cfg=OmegaConf.create(cfg), trainer=trainer)
    source = Path(config.init_from)
    model = (ASRModel.restore_from(str(source), map_location="cpu") if source.is_file()
             else ASRModel.from_pretrained(config.init_from, map_location="cpu"))
    model.change_vocabulary(new_tokenizer_dir=str(tokenizer), new_tokenizer_type="bpe")
    model.setup_training_data(OmegaConf.create(cfg["train_ds"]))
    model.setup_validation_data(OmegaConf.create(cfg["validation_ds"]))
    model.setup_optimization(OmegaConf.create(cfg["optim"]))
    model.set_trainer(trainer)
    return model


def train(config: RecipeConfig, output: Path, tokenizer: Path) -> tuple[Any, LossLog, float]:
    import lightning.pytorch as pl
    import torch

    pl.seed_everything(config.seed, workers=True)
    log = LossLog()

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            log.steps.append(trainer.global_step)
            log.losses.append(float(loss.detach()) if torch.is_tensor(loss) else float(loss))
            if trainer.global_step % config.log_every == 0:
                logger.info("step %d loss %.3f", trainer.global_step, log.losses[-1])

    trainer = pl.Trainer(
        accelerator=config.accelerator, devices=config.devices,
        precision=cast(Any, config.precision),
        max_steps=config.max_steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0, callbacks=[Record()], log_every_n_steps=config.log_every)
    cfg = model_config(config, output, tokenizer)
    model = build_model(config, cfg, tokenizer, trainer)
    began = time.perf_counter()
    trainer.fit(model)
    return model.eval(), log, time.perf_counter() - began


def evaluate(config: RecipeConfig, path: Path, output: Path) -> list[dict[str, Any]]:
    """Stream every validation utterance at each trained look-ahead: WER and chunk latency."""
    from speech.audio import load_audio
    from speech.backends.nemo_streaming import load_nemo
    from speech.options import TranscribeOptions

    entries = [json.loads(line) for line in
               (output / "manifests" / "val.jsonl").read_text(encoding="utf-8").splitlines()]
    entries = entries[: config.eval_utterances] if config.eval_utterances else entries
    audio = [load_audio(Path(e["audio_filepath"])) for e in entries]
    rows = []
    for lookahead in config.lookaheads:
        backend = load_nemo(path, language=config.language,
                            att_context_size=(config.left_context, lookahead))
        began = time.perf_counter()
        hypotheses = [" ".join(s.text for s in backend.transcribe(a, TranscribeOptions())[0])
                      for a in audio]
        spent = time.perf_counter() - began
        score = error_rate([e["text"] for e in entries], hypotheses, language=config.language)
        rows.append({"lookahead": lookahead, "chunk_seconds": backend.chunk_seconds,
                     "wer": score.score, "utterances": len(entries),
                     "real_time_factor": spent / max(1e-9, sum(len(a) for a in audio) / 16000),
                     "examples": [{"reference": e["text"], "hypothesis": h}
                                  for e, h in list(zip(entries, hypotheses, strict=True))[:3]]})
    return rows


def report(output: Path, config: RecipeConfig, data: dict[str, Any], log: LossLog,
           seconds: float, rows: list[dict[str, Any]]) -> None:
    window = max(1, len(log.losses) // 5)
    first = sum(log.losses[:window]) / window if log.losses else float("nan")
    last = sum(log.losses[-window:]) / window if log.losses else float("nan")
    result = {"config": asdict(config), "data": data, "train_seconds": seconds,
              "steps": len(log.losses), "loss_first": first, "loss_last": last,
              "losses": log.losses, "streaming": rows, "model": str(output / "model.nemo")}
    (output / "report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False),
                                        encoding="utf-8")
    lines = [f"# asr_nemo run ({config.language})", "",
             f"Data: {data['train']['utterances']} train utterances "
             f"({data['train']['hours'] * 60:.1f} min), {data['val']['utterances']} validation; "
             f"{len(data['train']['problems']) + len(data['val']['problems'])} manifest "
             "problems reported.", "",
             f"Training: {len(log.losses)} steps in {seconds:.0f} s; loss {first:.2f} → "
             f"{last:.2f} (mean of the first and last fifth of the steps).", "",
             "| look-ahead (steps) | chunk (s) | streaming WER (%) | real-time factor |",
             "|---|---|---|---|"]
    lines += [f"| {r['lookahead']} | {r['chunk_seconds']:.2f} | {r['wer']:.1f} | "
              f"{r['real_time_factor']:.3f} |" for r in rows]
    (output / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    config, output = start(argv, RecipeConfig, __doc__)
    for noisy in ("nemo_logger", "lightning", "lightning.pytorch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    data = prepare(config, output)
    logger.info("data: %s", {k: {kk: vv for kk, vv in v.items() if kk != "problems"}
                             for k, v in data.items()})
    tokenizer = train_tokenizer(config, output)
    model, log, seconds = train(config, output, tokenizer)
    path = output / "model.nemo"
    model.save_to(str(path))
    rows = evaluate(copy.deepcopy(config), path, output)
    report(output, config, data, log, seconds, rows)


if __name__ == "__main__":
    main()
