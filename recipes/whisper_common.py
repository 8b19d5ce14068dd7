"""What the Whisper recipes (``recipes/asr_whisper``, ``recipes/st_whisper``) share: the config
file, checked manifests, the model (a pretrained Whisper, or a tiny random one with the real
multilingual tokenizer for CI), the dataset and collator, ``Seq2SeqTrainer`` with SpecAugment and
optional encoder freezing, export to CTranslate2, and decoding through medstream's own loader.

The tiny random model goes through exactly the code path of ``openai/whisper-small``: same
tokenizer (the packaged Whisper base's ``tokenizer.json`` plus the 1,501 timestamp tokens, 51,865
ids in all), same 80-bin log-mel features over 30 s windows, same label layout
``<|startoftranscript|><|xx|><|task|><|notimestamps|> text<|endoftext|>``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from recipes.config import repo_path
from recipes.manifests import Entry, read_manifest, validate, write_manifest
from speech.audio import SAMPLE_RATE, load_audio
from speech.types import Task

logger = logging.getLogger("recipes.whisper")

TIMESTAMP_TOKENS = 1501
"""``<|0.00|>`` … ``<|30.00|>``: Whisper's vocabulary ends with them (51,865 ids in all)."""

C = TypeVar("C", bound="WhisperRecipeConfig")


@dataclass(frozen=True)
class WhisperRecipeConfig:
    """Settings both Whisper recipes share (YAML keys); each recipe adds its own."""

    init_from: str | None = None
    """A transformers Whisper directory or Hub id to fine-tune (``openai/whisper-small``);
    None builds a tiny random Whisper (the sizes below) for CI."""
    tokenizer_from: str = "base"
    """Without ``init_from``: where the tokenizer comes from, a packaged medstream ASR model
    name or a directory holding a Whisper ``tokenizer.json``."""
    d_model: int = 64
    encoder_layers: int = 2
    decoder_layers: int = 2
    attention_heads: int = 4
    ffn_dim: int = 256
    freeze_encoder: bool = False
    """Decoder-only fine-tuning (the encoder keeps its weights)."""
    spec_augment: bool = True
    mask_time_prob: float = 0.05
    mask_time_length: int = 10
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    min_duration: float = 0.3
    max_duration: float = 30.0
    """Seconds; Whisper sees at most one 30 s window per example."""
    max_label_tokens: int = 448
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_steps: int = 60
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    lr_scheduler: str = "linear"
    precision: str = "fp32"
    """fp32, fp16 or bf16 (mixed precision needs a GPU)."""
    gradient_checkpointing: bool = False
    device: str = "auto"
    """auto, cpu or cuda: for training and for decoding in the evaluation."""
    num_workers: int = 0
    seed: int = 0
    log_every: int = 10
    export_quantization: str = "float16"
    """CTranslate2 weights type of the export (converted again at load time as needed)."""
    beam_size: int = 5
    eval_utterances: int | None = None
    """Decode only the first N validation utterances (None: all)."""
    cache_features: bool = False
    """Keep log-mel features in memory after the first epoch (small data sets only)."""

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise SystemExit(f"device must be auto, cpu or cuda, not {self.device!r}")
        if self.precision not in ("fp32", "fp16", "bf16"):
            raise SystemExit(f"precision must be fp32, fp16 or bf16, not {self.precision!r}")


@dataclass(frozen=True)
class Example:
    """One training or evaluation pair: audio, the text the decoder must produce, and the
    language and task tokens of its prompt."""

    audio: Path
    target: str
    language: str
    task: Task


@dataclass(frozen=True)
class TrainResult:
    steps: list[int]
    losses: list[float]
    seconds: float
    eval_loss_before: float
    eval_loss_after: float

    def summary(self) -> dict[str, Any]:
        """First and last loss as the mean of the first and last fifth of the steps."""
        window = max(1, len(self.losses) // 5)
        return {"steps": len(self.losses), "train_seconds": round(self.seconds, 1),
                "loss_first": float(np.mean(self.losses[:window])),
                "loss_last": float(np.mean(self.losses[-window:])),
                "eval_loss_before": self.eval_loss_before,
                "eval_loss_after": self.eval_loss_after,
                "loss_curve": [{"step": s, "loss": v}
                               for s, v in zip(self.steps, self.losses, strict=True)]}


def checked_entries(sources: Sequence[str], languages: Sequence[str],
                    config: WhisperRecipeConfig) -> tuple[list[Entry], list[str]]:
    """The usable entries of some manifests in ``languages`` (all when empty), and every
    problem found (:func:`recipes.manifests.validate`)."""
    entries: list[Entry] = []
    problems: list[str] = []
    for source in sources:
        found, bad = read_manifest(repo_path(source))
        entries += [e for e in found if not languages or e.lang in languages]
        problems += [p.reason for p in bad]
    good, found_problems = check(entries, config)
    return good, problems + found_problems


def check(entries: Sequence[Entry], config: WhisperRecipeConfig) -> tuple[list[Entry], list[str]]:
    """The entries whose audio is readable and within the duration limits, and a line for
    each of the others (also logged)."""
    good, bad = validate(entries, min_duration=config.min_duration,
                         max_duration=config.max_duration)
    problems = [f"{p.audio}: {p.reason}" for p in bad]
    for problem in problems:
        logger.warning("%s", problem)
    return good, problems


def write_split(entries: list[Entry], problems: list[str], output: Path,
                split: str) -> dict[str, Any]:
    """Write ``OUTPUT/manifests/SPLIT.jsonl``; its counts for the report."""
    if not entries:
        raise SystemExit(f"no usable {split} utterances; problems: {problems[:5]}")
    write_manifest(entries, output / "manifests" / f"{split}.jsonl")
    return {"utterances": len(entries),
            "minutes": round(sum(e.duration for e in entries) / 60, 2), "problems": problems}


# --- the model -----------------------------------------------------------------------------


def build_model(config: WhisperRecipeConfig) -> tuple[Any, Any]:
    """(model, processor): ``init_from`` loaded, or a tiny random Whisper; SpecAugment and
    encoder freezing applied as the config says."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model: Any
    if config.init_from is not None:
        processor = WhisperProcessor.from_pretrained(config.init_from)
        model = WhisperForConditionalGeneration.from_pretrained(config.init_from)
    else:
        model, processor = tiny_whisper(config)
    model.config.apply_spec_augment = config.spec_augment
    model.config.mask_time_prob = config.mask_time_prob
    model.config.mask_time_length = config.mask_time_length
    model.config.mask_feature_prob = config.mask_feature_prob
    model.config.mask_feature_length = config.mask_feature_length
    if config.freeze_encoder:
        model.freeze_encoder()
    return model, processor


def tiny_whisper(config: WhisperRecipeConfig) -> tuple[Any, Any]:
    """A randomly initialised multilingual Whisper of the configured size, with the real
    tokenizer, feature extractor (80 mel bins, 30 s) and generation settings."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tokenizer, reference = whisper_tokenizer(config.tokenizer_from)
    ids = tokenizer.convert_tokens_to_ids
    start, end = ids("<|startoftranscript|>"), ids("<|endoftext|>")
    torch.manual_seed(config.seed)
    model_config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=config.d_model,
        encoder_layers=config.encoder_layers, decoder_layers=config.decoder_layers,
        encoder_attention_heads=config.attention_heads,
        decoder_attention_heads=config.attention_heads,
        encoder_ffn_dim=config.ffn_dim, decoder_ffn_dim=config.ffn_dim,
        decoder_start_token_id=start, bos_token_id=end, eos_token_id=end, pad_token_id=end,
        begin_suppress_tokens=reference.get("suppress_ids_begin", [220, end]))
    model = WhisperForConditionalGeneration(model_config)
    languages = reference.get("lang_ids") or [
        i for i in (ids(f"<|{code}|>") for code in LANGUAGES)
        if i is not None and i != tokenizer.unk_token_id]
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        decoder_start_token_id=start, bos_token_id=end, eos_token_id=end, pad_token_id=end,
        max_length=model_config.max_target_positions, is_multilingual=True,
        lang_to_id={tokenizer.convert_ids_to_tokens(i): i for i in languages},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        suppress_tokens=reference.get("suppress_ids", []),
        begin_suppress_tokens=model_config.begin_suppress_tokens)
    extractor = WhisperFeatureExtractor(  # type: ignore[no-untyped-call]
        feature_size=80, sampling_rate=SAMPLE_RATE)
    processor = WhisperProcessor(  # type: ignore[no-untyped-call]
        feature_extractor=extractor, tokenizer=tokenizer)
    return model, processor


def whisper_tokenizer(source: str) -> tuple[Any, dict[str, Any]]:
    """The Whisper tokenizer of a packaged medstream model or a model directory, with the
    timestamp tokens added so that it covers the whole vocabulary; and that model's
    CTranslate2 ``config.json`` (lang_ids, suppress_ids), empty when there is none."""
    from tokenizers import AddedToken

    # transformers 5 builds it lazily (mypy does not see it); 4.x declares it.
    from transformers import WhisperTokenizerFast  # type: ignore[attr-defined]

    from speech.catalog import PACKAGED_MODELS

    folder = Path(source).expanduser()
    if source in PACKAGED_MODELS and not folder.exists():
        folder = packaged_folder(source)
    if not (folder / "tokenizer.json").is_file():
        raise SystemExit(f"tokenizer_from {source!r}: neither a packaged model "
                         f"({', '.join(PACKAGED_MODELS)}) nor a folder with tokenizer.json")
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    reference = (folder / "config.json").read_text(encoding="utf-8") \
        if (folder / "config.json").is_file() else "{}"
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMP_TOKENS)]
    missing = [s for s in stamps if tokenizer.convert_tokens_to_ids(s) in (None,
                                                                           tokenizer.unk_token_id)]
    tokenizer.add_tokens([AddedToken(s, lstrip=False, rstrip=False, normalized=False)
                          for s in missing])
    return tokenizer, json.loads(reference)


def packaged_folder(name: str) -> Path:
    """The installed folder holding a packaged model's ``tokenizer.json`` (read from there,
    without joining and checking the weights: only the tokenizer is needed)."""
    from speech.catalog import PACKAGED_MODELS
    from speech.packaged import install_hint, locate

    model = PACKAGED_MODELS[name]
    folder = locate(model.folder)
    if folder is None:
        raise SystemExit(f"packaged model {name}: {install_hint(model)}")
    return folder


# --- data ----------------------------------------------------------------------------------


def label_ids(tokenizer: Any, example: Example, max_tokens: int) -> list[int]:
    """``<|startoftranscript|><|lang|><|task|><|notimestamps|> text<|endoftext|>`` (the text
    with Whisper's leading space), the text cut to fit ``max_tokens``."""
    ids = tokenizer.convert_tokens_to_ids
    prefix = [ids("<|startoftranscript|>"), ids(f"<|{example.language}|>"),
              ids(f"<|{example.task}|>"), ids("<|notimestamps|>")]
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in prefix:
        raise SystemExit(f"the tokenizer has no language token <|{example.language}|>")
    text = tokenizer.encode(" " + example.target.strip(), add_special_tokens=False)
    return [*prefix, *text[: max_tokens - len(prefix) - 1], ids("<|endoftext|>")]


class SpeechDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Log-mel features and label ids of some examples. Features are computed when an item is
    read; with ``cache`` they are kept in memory (about 1 MB per utterance: small sets only)."""

    def __init__(self, examples: Sequence[Example], processor: Any, max_label_tokens: int,
                 cache: bool = False) -> None:
        self.examples = list(examples)
        self.processor = processor
        self.max_label_tokens = max_label_tokens
        self.cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.examples[index]
        features = self.cache.get(index) if self.cache is not None else None
        if features is None:
            features = self.processor.feature_extractor(
                load_audio(example.audio), sampling_rate=SAMPLE_RATE, return_tensors="np",
                device="cpu").input_features[0]
            if self.cache is not None:
                self.cache[index] = features
        return {"input_features": features,
                "labels": label_ids(self.processor.tokenizer, example, self.max_label_tokens)}


def dataset(examples: Sequence[Example], processor: Any, config: WhisperRecipeConfig
            ) -> SpeechDataset:
    return SpeechDataset(examples, processor, config.max_label_tokens, config.cache_features)


@dataclass(frozen=True)
class SpeechCollator:
    """Stacks features; pads labels with -100 (ignored by the loss) and drops the leading
    ``<|startoftranscript|>``, which the model prepends itself when it shifts the labels."""

    decoder_start_token_id: int

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        features = torch.from_numpy(np.stack([i["input_features"] for i in items]))
        longest = max(len(i["labels"]) for i in items)
        labels = torch.full((len(items), longest), -100, dtype=torch.long)
        for row, item in enumerate(items):
            labels[row, : len(item["labels"])] = torch.tensor(item["labels"])
        if bool((labels[:, 0] == self.decoder_start_token_id).all()):
            labels = labels[:, 1:]
        return {"input_features": features, "labels": labels}


# --- training ------------------------------------------------------------------------------


def train(model: Any, processor: Any, train_set: SpeechDataset, val_set: SpeechDataset,
          config: WhisperRecipeConfig, output: Path) -> TrainResult:
    """Fine-tune with ``Seq2SeqTrainer``, recording every step's loss and the validation loss
    before and after."""
    from transformers import PrinterCallback, Seq2SeqTrainer, Seq2SeqTrainingArguments

    args = Seq2SeqTrainingArguments(
        output_dir=str(output / "checkpoints"), per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_steps=config.max_steps, learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        lr_scheduler_type=config.lr_scheduler, logging_steps=1, eval_strategy="no",
        save_strategy="no", report_to=[], seed=config.seed, data_seed=config.seed,
        dataloader_num_workers=config.num_workers, remove_unused_columns=False,
        label_names=["labels"], fp16=config.precision == "fp16",
        bf16=config.precision == "bf16", gradient_checkpointing=config.gradient_checkpointing,
        use_cpu=config.device == "cpu", disable_tqdm=True, predict_with_generate=False)
    trainer = Seq2SeqTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=val_set,
        data_collator=SpeechCollator(model.config.decoder_start_token_id),
        processing_class=processor.feature_extractor)
    trainer.remove_callback(PrinterCallback)
    before = float(trainer.evaluate()["eval_loss"])
    began = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - began
    after = float(trainer.evaluate()["eval_loss"])
    history = [e for e in trainer.state.log_history if "loss" in e and "step" in e]
    for entry in history[:: max(1, config.log_every)]:
        logger.info("step %d loss %.3f", entry["step"], entry["loss"])
    logger.info("validation loss %.3f → %.3f", before, after)
    return TrainResult([int(e["step"]) for e in history], [float(e["loss"]) for e in history],
                       seconds, before, after)


def export(model: Any, processor: Any, output: Path, name: str, quantization: str) -> Path:
    """Save ``OUTPUT/NAME-hf`` (transformers) and convert it to ``OUTPUT/NAME``
    (CTranslate2, with ``tokenizer.json`` and ``preprocessor_config.json``): the folder
    ``medstream transcribe --model`` takes."""
    from speech.catalog import WHISPER_FILES, convert_to_ctranslate2

    hf_dir = output / f"{name}-hf"
    model.save_pretrained(hf_dir)
    processor.save_pretrained(hf_dir)
    # transformers 5 folds the feature extractor into processor_config.json; CTranslate2 and
    # faster-whisper read preprocessor_config.json (mel bins, window).
    processor.feature_extractor.save_pretrained(hf_dir)
    target = output / name
    convert_to_ctranslate2(hf_dir, target, WHISPER_FILES, quantization)
    return target


# --- evaluation ----------------------------------------------------------------------------


def decode(model: str | Path, audio: Sequence[Path], language: str, task: Task,
           config: WhisperRecipeConfig) -> list[str]:
    """Text of each recording from a model loaded by medstream's loader (a catalog name, Hub
    id or directory; the Hub only when online), decoded as ``medstream transcribe`` does,
    without VAD."""
    from speech.loader import load_asr
    from speech.options import ModelOptions, TranscribeOptions

    backend = load_asr(str(model), ModelOptions(device=config.device))  # type: ignore[arg-type]
    options = TranscribeOptions(language=language, task=task, beam_size=config.beam_size,
                                word_timestamps=False, vad_filter=False,
                                condition_on_previous_text=False)
    texts = []
    for path in audio:
        segments, _ = backend.transcribe(load_audio(path), options)
        texts.append(" ".join(s.text.strip() for s in segments).strip())
    return texts


def run_lines(config: WhisperRecipeConfig, data: dict[str, Any], losses: dict[str, Any]
              ) -> list[str]:
    """The report's paragraphs on the model, the data and the training."""
    problems = sum(len(split["problems"]) for split in data.values())
    return [f"Base: {config.init_from or 'tiny random Whisper'}; "
            f"{'decoder-only' if config.freeze_encoder else 'full'} fine-tuning, SpecAugment "
            f"{'on' if config.spec_augment else 'off'}.", "",
            f"Data: {data['train']['utterances']} train utterances "
            f"({data['train']['minutes']:.1f} min), {data['val']['utterances']} validation; "
            f"{problems} manifest problems reported.", "",
            f"Training: {losses['steps']} steps in {losses['train_seconds']:.0f} s; loss "
            f"{losses['loss_first']:.2f} → {losses['loss_last']:.2f} (mean of the first and "
            f"last fifth of the steps); validation loss {losses['eval_loss_before']:.2f} → "
            f"{losses['eval_loss_after']:.2f}.", ""]


def write_report(output: Path, result: dict[str, Any], lines: Sequence[str]) -> None:
    """``OUTPUT/report.json`` (everything) and ``OUTPUT/report.md`` (the summary)."""
    (output / "report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False),
                                        encoding="utf-8")
    (output / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
