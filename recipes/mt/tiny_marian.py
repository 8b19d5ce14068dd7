"""A small German→English Marian model trained locally on CPU, served through CTranslate2.

No MT model ships with medstream and the Hugging Face Hub may be out of reach, so tests (and
``recipes/mt``) use a model trained here, in a few minutes on two CPU cores, from the real
medical parallel text in ``../shared/data/mt``:

* the WMT 2023 terminology test set (de→en medical abstracts), all but its last
  :data:`DEV_SEGMENTS` segments, which are held out as the development set;
* the WMT 2018 Biomedical Medline test sets, de→en as is and en→de with its columns swapped.

:func:`build_tiny_marian` trains a joint unigram SentencePiece model on that text, builds the
Marian vocabulary (``</s>`` = 0, ``<unk>`` = 1, the pieces, ``<pad>`` **last**), trains a
randomly initialised :class:`transformers.MarianMTModel` with a plain torch loop and converts it
to CTranslate2 with the tokenizer files beside the weights, so that the result loads like any
OPUS-MT conversion: ``ctranslate2.Translator(dir)`` + ``AutoTokenizer.from_pretrained(dir)``.

Why ``<pad>`` last: transformers' Marian starts the decoder from ``<pad>`` (the
``decoder_start_token_id``) whose embedding row is zero; CTranslate2's Marian converter instead
starts from a zero vector (``start_from_zero_embedding``) and **drops the last vocabulary entry
and the last row of the embeddings and output projection**, assuming it is that pad token. The
pad row is therefore kept zero throughout training (tied embeddings, so the output projection
never scores it above its zero bias either) and transformers' generation never emits it.

What to expect: the default configuration (1.4M parameters, 550 steps of 32 pairs, about
2.5 minutes on two idle cores) takes the label-smoothed loss from about 7.2 to 4.5; its output
is English-looking and differs from source to source but is not yet a translation (dev chrF
about 14, BLEU below 1). It exists to exercise the real loading and decoding path (tokens,
attention, constraints), not to translate well; more steps buy quality.

Run ``python -m recipes.mt.tiny_marian OUT_DIR [--max-steps N ...]`` to build one from the
command line and score it on the dev set (``OUT_DIR/summary.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recipes.config import REPO

logger = logging.getLogger(__name__)

DEV_SEGMENTS = 500
"""The last segments of the WMT23 terminology file: held out, never trained on."""

SOURCE_LANGUAGE = "de"
TARGET_LANGUAGE = "en"

DATA_DIR = REPO.parent / "shared" / "data" / "mt"
"""``../shared/data/mt`` next to the repository checkout (the recipes run from a checkout)."""

WMT23_FILE = Path("wmt23_terminology") / "wmt23_terminology.de-en.jsonl"
MEDLINE_FILES = {
    Path("medline") / "wmt18.medline.de-en.tsv": False,
    Path("medline") / "wmt18.medline.en-de.tsv": True,  # columns swapped: German is `ref`
}
"""Medline test sets and whether their columns are swapped to read de→en."""

EOS, UNK, PAD = "</s>", "<unk>", "<pad>"
METADATA_FILE = "medstream_mt.json"


@dataclass(frozen=True)
class ParallelPair:
    """A German sentence and its English translation."""

    source: str
    target: str
    origin: str
    """Where it comes from: ``wmt23:<id>`` or ``medline:<id>``."""


@dataclass(frozen=True)
class DataSplit:
    """Training pairs and the held-out development segments."""

    train: tuple[ParallelPair, ...]
    dev: tuple[ParallelPair, ...]
    dev_rows: tuple[dict[str, Any], ...]
    """The dev segments' WMT23 rows as read (``terms_proper``, ``terms_random``, ...)."""
    train_terms: tuple[ParallelPair, ...] = ()
    """The term pairs annotated on the training segments (``terms_proper`` and
    ``terms_random``), deduplicated: short pairs that teach word translation cheaply."""


@dataclass(frozen=True)
class TinyMarianConfig:
    """Model size and training schedule; the defaults train in about 2–3 minutes on 2 cores."""

    vocab_size: int = 4000
    """SentencePiece pieces (the model vocabulary adds ``</s>`` and ``<pad>``)."""
    d_model: int = 128
    encoder_layers: int = 2
    decoder_layers: int = 2
    heads: int = 4
    ffn_dim: int = 512
    dropout: float = 0.0
    """Off by default: a few epochs do not overfit, and dropout slows the little learning
    there is time for."""
    max_steps: int = 550
    batch_size: int = 32
    """Sentence pairs per step (batches group pairs of similar length)."""
    learning_rate: float = 3e-3
    warmup_steps: int = 60
    """Linear warm-up, then cosine decay to zero at ``max_steps``."""
    label_smoothing: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    max_length: int = 128
    """Tokens per side (``</s>`` included); longer training pairs are truncated."""
    seed: int = 1234
    threads: int = 0
    """torch intra-op threads (0: torch's default)."""
    device: str = "cpu"
    """Where :func:`train` runs (``cuda`` for a fine-tuning run of ``recipes/mt``)."""
    quantization: str | None = None
    """CTranslate2 weight type on disk (None: float32 as trained; ``int8`` is 4x smaller)."""
    log_every: int = 50
    """Steps per logged (and averaged) loss."""
    term_pairs: bool = False
    """Also train on the training segments' annotated term pairs (:attr:`DataSplit.train_terms`)
    when :func:`build_tiny_marian` picks the training data itself."""


@dataclass(frozen=True)
class TinyMarianResult:
    """What :func:`build_tiny_marian` produced."""

    ct2_dir: Path
    """CTranslate2 model directory with the tokenizer files: the model to load."""
    hf_dir: Path
    """The same model as a transformers checkpoint (plus tokenizer)."""
    losses: tuple[float, ...]
    """Training loss (label-smoothed cross-entropy per target token), one value per step."""
    first_loss: float
    """Mean loss over the first ``log_every`` steps."""
    last_loss: float
    """Mean loss over the last ``log_every`` steps."""
    train_seconds: float
    """Wall-clock seconds of the training loop (not the SentencePiece or conversion)."""
    parameters: int
    train_pairs: int
    config: TinyMarianConfig = field(default_factory=TinyMarianConfig)


# ---------------------------------------------------------------------------------- data


def read_wmt23(path: Path) -> list[dict[str, Any]]:
    """Rows of the WMT23 terminology JSONL file, in file order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read_medline(path: Path, swapped: bool) -> list[ParallelPair]:
    """De→en pairs of a Medline TSV (``swapped``: the file is en→de); empty lines skipped."""
    pairs = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            german, english = (row["ref"], row["src"]) if swapped else (row["src"], row["ref"])
            if german.strip() and english.strip():
                pairs.append(ParallelPair(german.strip(), english.strip(), f"medline:{row['id']}"))
    return pairs


def train_dev_split(data_dir: Path = DATA_DIR, dev_segments: int = DEV_SEGMENTS) -> DataSplit:
    """The training pairs and the last ``dev_segments`` WMT23 segments as dev set.

    Training pairs are the WMT23 segments before the dev set and both Medline directions;
    a training pair whose German side is also a dev source is left out.
    """
    rows = read_wmt23(data_dir / WMT23_FILE)
    if len(rows) <= dev_segments:
        raise ValueError(f"{data_dir / WMT23_FILE}: {len(rows)} segments, fewer than the "
                         f"{dev_segments} held out")
    dev_rows = rows[-dev_segments:]
    dev = tuple(_wmt23_pair(row) for row in dev_rows)
    train = [_wmt23_pair(row) for row in rows[:-dev_segments]]
    for name, swapped in MEDLINE_FILES.items():
        train.extend(read_medline(data_dir / name, swapped))
    held_out = {pair.source for pair in dev}
    train = [pair for pair in train if pair.source and pair.target
             and pair.source not in held_out]
    return DataSplit(tuple(train), dev, tuple(dev_rows), _terms(rows[:-dev_segments]))


def _terms(rows: Sequence[dict[str, Any]]) -> tuple[ParallelPair, ...]:
    seen: dict[tuple[str, str], ParallelPair] = {}
    for row in rows:
        for term in [*row.get("terms_proper", ()), *row.get("terms_random", ())]:
            key = (str(term["de"]).strip(), str(term["en"]).strip())
            if all(key) and key not in seen:
                seen[key] = ParallelPair(*key, f"wmt23-term:{row['id']}")
    return tuple(seen.values())


def _wmt23_pair(row: dict[str, Any]) -> ParallelPair:
    return ParallelPair(str(row["src"]).strip(), str(row["ref"]).strip(), f"wmt23:{row['id']}")


# ---------------------------------------------------------------------------------- tokenizer


def train_sentencepiece(texts: Sequence[str], model_file: Path, vocab_size: int,
                        seed: int = 1234, user_symbols: Sequence[str] = ()) -> None:
    """A joint unigram SentencePiece model of ``texts`` written to ``model_file``.

    Only ``<unk>`` (id 0) is reserved: ``</s>`` and ``<pad>`` live in the Marian vocabulary.
    ``vocab_size`` is an upper bound when the text is too small for it. ``user_symbols`` are
    always one piece each, wherever they occur (ids 1, 2, …: e.g. term annotation markers).
    """
    import sentencepiece as spm

    prefix = model_file.with_suffix("")
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(prefix), vocab_size=vocab_size,
        model_type="unigram", character_coverage=0.9999, hard_vocab_limit=False,
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, unk_piece=UNK, num_threads=2,
        minloglevel=2, user_defined_symbols=list(user_symbols),
    )
    prefix.with_suffix(".model").replace(model_file)
    prefix.with_suffix(".vocab").unlink(missing_ok=True)


def marian_vocab(model_file: Path) -> dict[str, int]:
    """``</s>`` = 0, ``<unk>`` = 1, every other piece in SentencePiece order, ``<pad>`` last."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(model_file))
    vocab = {EOS: 0, UNK: 1}
    for index in range(processor.get_piece_size()):
        piece = processor.id_to_piece(index)
        if piece not in vocab and piece != PAD:
            vocab[piece] = len(vocab)
    vocab[PAD] = len(vocab)
    return vocab


def write_tokenizer(model_file: Path, folder: Path, source_lang: str = SOURCE_LANGUAGE,
                    target_lang: str = TARGET_LANGUAGE) -> Any:
    """Save a :class:`transformers.MarianTokenizer` (joint vocabulary) into ``folder``.

    ``source_lang`` and ``target_lang`` are recorded in its ``tokenizer_config.json`` (a
    bilingual Marian model has no language tokens: they change nothing in the tokens)."""
    from transformers import MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.json"
    vocab_file.write_text(json.dumps(marian_vocab(model_file), ensure_ascii=False, indent=1),
                          encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        shutil.copyfile(model_file, folder / name)
    tokenizer = MarianTokenizer(
        source_spm=str(folder / "source.spm"), target_spm=str(folder / "target.spm"),
        vocab=str(vocab_file), source_lang=source_lang, target_lang=target_lang,
        eos_token=EOS, unk_token=UNK, pad_token=PAD, model_max_length=512,
    )
    tokenizer.save_pretrained(str(folder))
    check_vocabulary_ids(tokenizer)
    return tokenizer


def check_vocabulary_ids(tokenizer: Any) -> None:
    """Fail loudly unless ``</s>`` = 0, ``<unk>`` = 1 and ``<pad>`` is the last id."""
    vocab = tokenizer.get_vocab()
    last = len(vocab) - 1
    expected = {"eos_token_id": 0, "unk_token_id": 1, "pad_token_id": last}
    found = {name: getattr(tokenizer, name) for name in expected}
    if found != expected or max(vocab.values()) != last:
        raise ValueError(f"Marian vocabulary ids {found} (of {len(vocab)}), expected {expected}")


# ---------------------------------------------------------------------------------- model


def marian_config(config: TinyMarianConfig, vocab_size: int) -> Any:
    """An OPUS-MT-like :class:`transformers.MarianConfig`: ``<pad>`` (last id) starts decoding.

    Weights are drawn with standard deviation ``d_model ** -0.5`` (transformers' 0.02 leaves
    the scaled token embeddings three times weaker than the sinusoidal positions, and such a
    model learns no more than a target-side language model in the steps there is time for).
    """
    from transformers import MarianConfig

    pad = vocab_size - 1
    return MarianConfig(
        vocab_size=vocab_size, decoder_vocab_size=vocab_size, d_model=config.d_model,
        encoder_layers=config.encoder_layers, decoder_layers=config.decoder_layers,
        encoder_attention_heads=config.heads, decoder_attention_heads=config.heads,
        encoder_ffn_dim=config.ffn_dim, decoder_ffn_dim=config.ffn_dim,
        max_position_embeddings=512, activation_function="swish", dropout=config.dropout,
        attention_dropout=0.0, activation_dropout=0.0, scale_embedding=True,
        pad_token_id=pad, decoder_start_token_id=pad, eos_token_id=0, bos_token_id=None,
        forced_eos_token_id=None, share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True, init_std=config.d_model ** -0.5,
    )


def new_model(config: TinyMarianConfig, vocab_size: int) -> Any:
    """A randomly initialised :class:`transformers.MarianMTModel` with a zero pad row."""
    import torch
    from transformers import MarianMTModel

    torch.manual_seed(config.seed)
    model = MarianMTModel(marian_config(config, vocab_size))
    zero_pad_row(model)
    generation = model.generation_config
    generation.decoder_start_token_id = vocab_size - 1
    generation.pad_token_id = vocab_size - 1
    generation.eos_token_id = 0
    generation.bad_words_ids = [[vocab_size - 1]]
    generation.forced_eos_token_id = None
    generation.num_beams = 1
    generation.max_length = config.max_length * 2
    return model


def zero_pad_row(model: Any) -> None:
    """Zero the (shared, tied) embedding row of ``<pad>``, which CTranslate2 drops."""
    import torch

    with torch.no_grad():
        model.get_input_embeddings().weight[model.config.pad_token_id].zero_()


def parameter_count(model: Any) -> int:
    """Distinct trainable parameters (tied embeddings counted once)."""
    seen = {id(p): p.numel() for p in model.parameters() if p.requires_grad}
    return sum(seen.values())


# ---------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class _Example:
    source: list[int]
    target: list[int]


def encode_pairs(tokenizer: Any, pairs: Sequence[ParallelPair],
                 max_length: int) -> list[_Example]:
    """Token ids of each pair (each side ends with ``</s>``; truncated to ``max_length``)."""
    sources = tokenizer([p.source for p in pairs], truncation=True,
                        max_length=max_length).input_ids
    targets = tokenizer(text_target=[p.target for p in pairs], truncation=True,
                        max_length=max_length).input_ids
    return [_Example(list(s), list(t)) for s, t in zip(sources, targets, strict=True)]


def length_batches(examples: Sequence[_Example], batch_size: int,
                   rng: random.Random) -> list[list[_Example]]:
    """Batches of pairs of similar length (sorted with a little noise), in shuffled order."""
    keyed = sorted(examples, key=lambda e: len(e.target) + len(e.source) / 4 + rng.random() * 3)
    batches = [keyed[i:i + batch_size] for i in range(0, len(keyed), batch_size)]
    rng.shuffle(batches)
    return batches


def endless_batches(examples: Sequence[_Example], batch_size: int,
                    seed: int) -> Iterator[list[_Example]]:
    """Epoch after epoch of :func:`length_batches`."""
    rng = random.Random(seed)
    while True:
        yield from length_batches(examples, batch_size, rng)


def collate(batch: Sequence[_Example], pad: int, start: int | None = None) -> dict[str, Any]:
    """Padded tensors: ``input_ids``, ``attention_mask``, ``decoder_input_ids`` (shifted right,
    starting with ``start``, by default ``<pad>`` as in Marian; NLLB and M2M100 start with
    ``</s>``), ``decoder_attention_mask`` and ``labels`` (-100 on padding)."""
    import torch

    def padded(rows: list[list[int]], value: int) -> torch.Tensor:
        width = max(len(row) for row in rows)
        return torch.tensor([row + [value] * (width - len(row)) for row in rows])

    sources = padded([e.source for e in batch], pad)
    labels = padded([e.target for e in batch], -100)
    first = pad if start is None else start
    decoder_inputs = padded([[first, *e.target[:-1]] for e in batch], pad)
    decoder_mask = padded([[1] * len(e.target) for e in batch], 0)
    return {"input_ids": sources, "attention_mask": (sources != pad).long(),
            "decoder_input_ids": decoder_inputs, "decoder_attention_mask": decoder_mask,
            "labels": labels}


def learning_rate_factor(step: int, config: TinyMarianConfig) -> float:
    """Linear warm-up to 1, then cosine decay to 0 at ``max_steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train(model: Any, examples: Sequence[_Example], config: TinyMarianConfig) -> list[float]:
    """Train ``model`` in place for ``config.max_steps`` steps; the loss of every step."""
    import torch

    if config.threads > 0:
        torch.set_num_threads(config.threads)
    pad = model.config.pad_token_id
    start = model.config.decoder_start_token_id
    marian = model.config.model_type == "marian"
    model.to(config.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  betas=(0.9, 0.98), eps=1e-9,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, config))
    loss_function = torch.nn.CrossEntropyLoss(ignore_index=-100,
                                              label_smoothing=config.label_smoothing)
    batches = endless_batches(examples, config.batch_size, config.seed)
    losses: list[float] = []
    model.train()
    for step in range(config.max_steps):
        inputs = {name: tensor.to(config.device)
                  for name, tensor in collate(next(batches), pad, start).items()}
        labels = inputs.pop("labels")
        logits = model(**inputs).logits
        loss = loss_function(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        schedule.step()
        if marian:
            zero_pad_row(model)
        losses.append(float(loss.item()))
        if (step + 1) % config.log_every == 0:
            recent = losses[-config.log_every:]
            logger.info("step %d/%d loss %.3f lr %.2e", step + 1, config.max_steps,
                        sum(recent) / len(recent), schedule.get_last_lr()[0])
    model.eval()
    return losses


# ---------------------------------------------------------------------------------- build


def build_tiny_marian(out_dir: Path, config: TinyMarianConfig = TinyMarianConfig(),
                      train_pairs: Sequence[ParallelPair] | None = None) -> TinyMarianResult:
    """Train a small de→en Marian model into ``out_dir`` (``hf/`` and ``ct2/``).

    ``train_pairs`` defaults to :func:`train_dev_split`'s training pairs (the shared data must
    be present). The SentencePiece model learns from the training text only.
    """
    if train_pairs is None:
        split = train_dev_split()
        train_pairs = split.train + (split.train_terms if config.term_pairs else ())
    pairs = list(train_pairs)
    if not pairs:
        raise ValueError("no training pairs")
    out_dir.mkdir(parents=True, exist_ok=True)
    hf_dir, ct2_dir = out_dir / "hf", out_dir / "ct2"
    spm_file = out_dir / "joint.spm"
    texts = [p.source for p in pairs] + [p.target for p in pairs]
    train_sentencepiece(texts, spm_file, config.vocab_size, config.seed)
    tokenizer = write_tokenizer(spm_file, hf_dir)
    model = new_model(config, len(tokenizer.get_vocab()))
    examples = encode_pairs(tokenizer, pairs, config.max_length)
    started = time.perf_counter()
    losses = train(model, examples, config)
    seconds = time.perf_counter() - started
    model.save_pretrained(str(hf_dir))
    convert(hf_dir, ct2_dir, config.quantization)
    window = max(1, min(config.log_every, len(losses) // 2))
    result = TinyMarianResult(
        ct2_dir=ct2_dir, hf_dir=hf_dir, losses=tuple(losses),
        first_loss=sum(losses[:window]) / window, last_loss=sum(losses[-window:]) / window,
        train_seconds=seconds, parameters=parameter_count(model), train_pairs=len(pairs),
        config=config)
    write_metadata(result, pairs)
    return result


def convert(hf_dir: Path, ct2_dir: Path, quantization: str | None) -> None:
    """CTranslate2 conversion with the tokenizer files copied, as ``medstream models convert``
    does it (CTranslate2's Marian loader drops the last vocabulary id, ``<pad>``)."""
    from speech.catalog import convert_to_ctranslate2
    from translate.catalog import TOKENIZER_FILES

    convert_to_ctranslate2(hf_dir, ct2_dir, TOKENIZER_FILES, quantization)


def write_metadata(result: TinyMarianResult, pairs: Sequence[ParallelPair]) -> None:
    """``medstream_mt.json`` in the CTranslate2 directory: what the model is and was fed."""
    origins: dict[str, int] = {}
    for pair in pairs:
        corpus = pair.origin.split(":", 1)[0]
        origins[corpus] = origins.get(corpus, 0) + 1
    metadata = {
        "architecture": "marian", "builder": __name__,
        "source_language": SOURCE_LANGUAGE, "target_language": TARGET_LANGUAGE,
        "training_data": {"pairs": len(pairs), "by_corpus": origins,
                          "held_out": f"last {DEV_SEGMENTS} segments of {WMT23_FILE}"},
        "steps": len(result.losses), "first_loss": round(result.first_loss, 4),
        "final_loss": round(result.last_loss, 4), "train_seconds": round(result.train_seconds, 1),
        "parameters": result.parameters, "config": asdict(result.config),
    }
    (result.ct2_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n",
                                                encoding="utf-8")


# ---------------------------------------------------------------------------------- use


def translate_ct2(ct2_dir: Path, texts: Sequence[str], beam_size: int = 1,
                  max_length: int = 256, compute_type: str = "default") -> list[str]:
    """Translations of ``texts`` by a CTranslate2 model directory with its tokenizer."""
    import ctranslate2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ct2_dir))
    translator = ctranslate2.Translator(str(ct2_dir), compute_type=compute_type)
    sources = [tokenizer.convert_ids_to_tokens(tokenizer.encode(text)) for text in texts]
    results = translator.translate_batch(sources, beam_size=beam_size, max_batch_size=32,
                                         max_decoding_length=max_length)
    return [str(tokenizer.decode(tokenizer.convert_tokens_to_ids(r.hypotheses[0]),
                                 skip_special_tokens=True)).strip() for r in results]


def dev_scores(ct2_dir: Path, dev: Sequence[ParallelPair], beam_size: int = 1) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu) of the model's translations of ``dev``."""
    import sacrebleu

    hypotheses = translate_ct2(ct2_dir, [p.source for p in dev], beam_size)
    references = [[p.target for p in dev]]
    return {"bleu": float(sacrebleu.corpus_bleu(hypotheses, references).score),
            "chrf": float(sacrebleu.corpus_chrf(hypotheses, references).score)}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m recipes.mt.tiny_marian OUT_DIR [--max-steps N ...]``: build and score."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("out_dir", type=Path)
    defaults = TinyMarianConfig()
    for name, value in asdict(defaults).items():
        kind: Any = _yes if isinstance(value, bool) else type(value) if value is not None else str
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=value)
    args = vars(parser.parse_args(argv))
    out_dir = args.pop("out_dir")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = TinyMarianConfig(**args)
    split = train_dev_split()
    result = build_tiny_marian(out_dir, config)
    scores = dev_scores(result.ct2_dir, split.dev)
    summary = {"ct2_dir": str(result.ct2_dir), "parameters": result.parameters,
               "train_pairs": result.train_pairs, "train_seconds": round(result.train_seconds, 1),
               "first_loss": round(result.first_loss, 3), "last_loss": round(result.last_loss, 3),
               **{k: round(v, 2) for k, v in scores.items()}, "config": asdict(config)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))


def _yes(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


if __name__ == "__main__":
    main()
