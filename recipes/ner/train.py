"""Fine-tune the packaged encoder into medstream's medical NER tagger, then evaluate it.

Usage (from the repository root; see recipes/ner/README.md):

    .venv/bin/python recipes/ner/train.py --config recipes/ner/conf/tiny.yaml --output runs/ner-tiny
    .venv/bin/python recipes/ner/train.py --config recipes/ner/conf/full.yaml \\
        --output /work/ner_runs/full --set epochs=2

Steps: 1. read the config; 2. resolve the encoder (pinned package or directory); 3. load the
train splits in schema types and add spoken-style copies; 4. cut them into model windows with a
set of acceptable labels per word (:mod:`ner.partial_loss`); 5. train; 6. export an HF
directory; 7. tag every devel split (as written and spoken-style) with the exported model and
write strict span F1 per corpus and type to ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from eval.entities import EntityF1, entity_f1
from ner.corpora import CorpusSentence, asr_style, load_split
from ner.encoder import DEFAULT_ENCODER, resolve_encoder
from ner.evaluation import tag_split
from ner.heads import CONFIG_KEY, SHARED, Heads
from ner.partial_loss import allowed_labels, partial_label_loss
from ner.schema import EntityType, iob2_labels
from ner.tagger import TaggerOptions, TransformerTagger
from ner.windows import Window, encode_windows, pad_ids
from recipes.config import start as start_recipe

logger = logging.getLogger("recipes.ner.train")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run (the YAML keys); recorded in ``metrics.json``."""

    encoder: str = DEFAULT_ENCODER
    """Packaged encoder name (ner.encoder.PACKAGED_ENCODERS) or an HF directory."""
    init: str | None = None
    """A run's output directory to continue training from (a second round with a fresh
    learning-rate schedule); it must have the labels and heads this config makes."""
    data_root: str = "../shared/data/ner"
    corpora: tuple[str, ...] = ("ncbi_disease", "bc5cdr", "anatem")
    heads: str = "per_corpus"
    """``per_corpus``: one label group per corpus over the shared encoder (:mod:`ner.heads`);
    ``shared``: one softmax over all types, trained with the partial-label loss."""
    view: dict[str, str] | None = None
    """With ``per_corpus`` heads, the corpus whose head the pipeline reads for each type
    (type name → corpus); unnamed types come from the first corpus annotating them."""
    train_sentences: int | None = None
    """Per corpus, a seeded random sample of this many train sentences (None: all)."""
    eval_sentences: int | None = None
    """Per corpus, the first this many devel sentences (None: all)."""
    asr_copy_probability: float = 0.3
    """Chance, per sentence and epoch, of also training on its lower-cased unpunctuated copy."""
    epochs: int = 1
    max_steps: int | None = None
    """Stop after this many optimizer steps (None: run all epochs)."""
    max_train_minutes: float | None = None
    """Stop training (then export and evaluate) once this much time has passed, so a run on a
    busy machine still ends on time; the learning rate has then not fully decayed."""
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    max_length: int = 128
    """Sub-tokens per training window; longer sentences are cut into overlapping windows."""
    stride: int = 32
    seed: int = 13
    threads: int = 2
    device: str = "cpu"
    log_every: int = 20


@dataclass(frozen=True)
class Example:
    """A training window, per owned position the label ids the loss accepts there, and the
    label ids of the head it trains (its softmax runs over those)."""

    window: Window
    targets: tuple[tuple[int, tuple[int, ...]], ...]
    head: tuple[int, ...]


def featurize(tokenizer: Any, sentences: Sequence[CorpusSentence], labels: Sequence[str],
              heads: Heads, config: TrainConfig) -> list[Example]:
    """Windows of ``sentences`` with targets in the head of their corpus (or the shared head,
    with partial labels: see :mod:`ner.partial_loss`)."""
    encoded = encode_windows(tokenizer, [s.sentence.tokens for s in sentences],
                             max_length=config.max_length, stride=config.stride, is_split=True)
    head_labels = {name: heads.labels_of(name, labels) for name in heads.groups}
    examples = []
    for window in encoded.windows:
        item = sentences[window.sample]
        name = item.corpus if item.corpus in heads.groups else SHARED
        head = heads.groups[name]
        model_types = {EntityType(label[2:]) for label in head_labels[name] if label != "O"}
        unannotated = model_types - item.annotated
        targets = tuple(
            (position, tuple(head[i] for i in allowed_labels(item.sentence.tags[word],
                                                              head_labels[name], unannotated)))
            for position, word in window.owned)
        examples.append(Example(window, targets, head))
    return examples


def collate(batch: Sequence[Example], pad_id: int, num_labels: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``input_ids``, ``attention_mask``, the boolean ``allowed`` (batch, width, labels) and
    ``valid`` (batch, 1, labels): each window's head."""
    ids, mask = pad_ids([e.window for e in batch], pad_id)
    allowed = torch.zeros((*ids.shape, num_labels), dtype=torch.bool)
    valid = torch.zeros((len(batch), 1, num_labels), dtype=torch.bool)
    for row, example in enumerate(batch):
        valid[row, 0, list(example.head)] = True
        for position, label_ids in example.targets:
            allowed[row, position, list(label_ids)] = True
    return ids, mask, allowed, valid


def batches(examples: Sequence[Example], size: int, rng: random.Random) -> list[list[Example]]:
    """Shuffled batches of similar length (sorted within chunks of 50 batches)."""
    order = list(examples)
    rng.shuffle(order)
    result: list[list[Example]] = []
    chunk = size * 50
    for start in range(0, len(order), chunk):
        piece = sorted(order[start:start + chunk], key=lambda e: len(e.window.input_ids))
        result.extend(piece[i:i + size] for i in range(0, len(piece), size))
    rng.shuffle(result)
    return result


def epoch_plans(originals: list[Example], copies: list[Example], config: TrainConfig,
                rng: random.Random) -> list[list[list[Example]]]:
    """Each epoch's batches: all originals plus each spoken-style copy with its probability."""
    plans = []
    for _ in range(config.epochs):
        chosen = [c for c in copies if rng.random() < config.asr_copy_probability]
        plans.append(batches(originals + chosen, config.batch_size, rng))
    return plans


def optimizer_for(model: torch.nn.Module, config: TrainConfig,
                  total_steps: int) -> tuple[torch.optim.Optimizer, LambdaLR]:
    """AdamW (no decay on biases and LayerNorm) with linear warm-up then linear decay."""
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        (plain if parameter.ndim == 1 or "LayerNorm" in name else decay).append(parameter)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": plain, "weight_decay": 0.0}],
                                  lr=config.learning_rate)
    warmup = max(1, round(config.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, LambdaLR(optimizer, factor)


def train(model: Any, plans: list[list[list[Example]]], pad_id: int, num_labels: int,
          config: TrainConfig) -> dict[str, Any]:
    """Run the optimisation; returns what the run did (steps, sentences/s, last loss)."""
    device = torch.device(config.device)
    total = sum(len(plan) for plan in plans)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    optimizer, schedule = optimizer_for(model, config, total)
    model.to(device).train()
    step, seen, started, running = 0, 0, time.monotonic(), math.nan
    stopped_early = False
    for batch in _steps(plans, total):
        if config.max_train_minutes is not None and \
                time.monotonic() - started > 60 * config.max_train_minutes:
            logger.warning("max_train_minutes=%s reached after %d of %d steps: stopping",
                           config.max_train_minutes, step, total)
            stopped_early = True
            break
        ids, mask, allowed, valid = (t.to(device) for t in collate(batch, pad_id, num_labels))
        loss = partial_label_loss(model(input_ids=ids, attention_mask=mask).logits, allowed,
                                  valid)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        step, seen = step + 1, seen + len(batch)
        value = loss.item()
        running = value if math.isnan(running) else 0.95 * running + 0.05 * value
        if step % config.log_every == 0 or step == total:
            elapsed = time.monotonic() - started
            logger.info("step %d/%d  loss %.4f  %.1f windows/s  elapsed %.0fs  eta %.0fs",
                        step, total, running, seen / elapsed, elapsed,
                        elapsed / step * (total - step))
    elapsed = time.monotonic() - started
    return {"steps": step, "planned_steps": total, "stopped_early": stopped_early,
            "windows": seen, "seconds": round(elapsed, 1),
            "windows_per_second": round(seen / elapsed, 2) if elapsed else None,
            "final_loss": round(running, 5)}


def _steps(plans: list[list[list[Example]]], total: int) -> Iterator[list[Example]]:
    count = 0
    for plan in plans:
        for batch in plan:
            if count == total:
                return
            count += 1
            yield batch


def check_init(path: str, labels: Sequence[str], heads: Heads) -> None:
    """Exit with a message unless the run at ``path`` has exactly ``labels`` and ``heads``."""
    try:
        stored = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"init: {path} is not a run's output directory ({exc})") from None
    id2label = stored.get("id2label", {})
    theirs = [id2label.get(str(i)) for i in range(len(id2label))]
    if theirs != list(labels) or stored.get(CONFIG_KEY) != heads.to_json():
        raise SystemExit(f"init: {path} has labels {theirs} and heads {stored.get(CONFIG_KEY)}, "
                         f"but this config makes {list(labels)} and {heads.to_json()}: "
                         "continue a run of the same corpora and heads")


def evaluate(tagger: TransformerTagger, config: TrainConfig) -> dict[str, Any]:
    """Strict span F1 per devel split, as written and spoken-style, per type (see
    :mod:`ner.evaluation` for what is scored); for a model with heads also as written through
    the pipeline's view."""
    results: dict[str, Any] = {}
    for corpus in config.corpora:
        results[corpus] = {}
        for split in tag_split(tagger, config.data_root, corpus, "devel",
                               config.eval_sentences):
            scores = entity_f1([s.spans for s in split.gold], [s.spans for s in split.predicted])
            results[corpus][split.variant] = {"sentences": len(split.gold), **scores.to_dict()}
            logger.info("%s %s: F1 %.4f (P %.4f R %.4f, %d gold spans)", corpus, split.variant,
                        scores.micro.f1, scores.micro.precision, scores.micro.recall,
                        scores.micro.support)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    # 1. Config and determinism.
    config, output = start_recipe(argv, TrainConfig, __doc__)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    logger.info("config: %s", config)

    # 2. Encoder.
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    encoder = resolve_encoder(config.encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder.path)

    # 3. Data: train splits in schema types, plus spoken-style copies.
    sentences: list[CorpusSentence] = []
    for corpus in config.corpora:
        split = load_split(config.data_root, corpus, "train")
        if config.train_sentences is not None:
            split = rng.sample(split, min(config.train_sentences, len(split)))
        sentences.extend(split)
    if config.heads == "per_corpus":
        labels, heads = Heads.per_corpus(config.corpora, config.view)
    elif config.heads == "shared":
        labels = iob2_labels({t for s in sentences for t in s.annotated})
        heads = Heads.shared(labels)
    else:
        raise SystemExit(f"heads must be per_corpus or shared, not {config.heads!r}")
    copies = [CorpusSentence(s.corpus, spoken, s.annotated) for s in sentences
              if (spoken := asr_style(s.sentence)) is not None]
    logger.info("%d train sentences (%d spoken-style copies available), labels %s",
                len(sentences), len(copies), labels)

    # 4. Windows with partial-label targets.
    plans = epoch_plans(featurize(tokenizer, sentences, labels, heads, config),
                        featurize(tokenizer, copies, labels, heads, config), config, rng)

    # 5. Train.
    if config.init is not None:
        check_init(config.init, labels, heads)
    model = AutoModelForTokenClassification.from_pretrained(
        config.init or encoder.path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)})
    setattr(model.config, CONFIG_KEY, heads.to_json())
    summary = train(model, plans, tokenizer.pad_token_id or 0, len(labels), config)

    # 6. Export.
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)

    # 7. Evaluate the exported model the way the pipeline loads it.
    tagger = TransformerTagger(output, TaggerOptions(device=config.device))
    metrics = {"metric": EntityF1("strict").signature(), "encoder": encoder.identifier,
               "labels": labels, "config": asdict(config), "train": summary,
               "devel": evaluate(tagger, config)}
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n",
                                              encoding="utf-8")
    logger.info("wrote %s", output / "metrics.json")


if __name__ == "__main__":
    main()
