"""Tiny, randomly initialised NLLB-200 and M2M100 models built locally (no Hub), for the tests
of the multilingual MT code paths (:mod:`tests.test_mt_families`).

Both families are :class:`transformers.M2M100ForConditionalGeneration`; they differ in their
tokenizer and language tokens:

* **NLLB-200**: :class:`transformers.NllbTokenizer` (a ``tokenizers`` BPE tokenizer in
  transformers 5) with the fairseq layout ``<s>`` = 0, ``<pad>`` = 1, ``</s>`` = 2,
  ``<unk>`` = 3, the SentencePiece pieces, then ``<mask>`` and the 202 FLORES-200 codes
  (``eng_Latn`` …) as special tokens (the Hub's models put ``<mask>`` last; no code here
  depends on that order). Source: ``deu_Latn … </s>``; outputs start ``eng_Latn``.
* **M2M100**: :class:`transformers.M2M100Tokenizer` (slow, SentencePiece) reading
  ``vocab.json`` (the same fairseq layout) and ``sentencepiece.bpe.model``; the 100 language
  tokens ``__en__`` … follow the vocabulary, then 8 ``madeupword`` slots, which the model's
  embedding matrix covers (as in ``facebook/m2m100_418M``: 128 004 + 100 + 8 = 128 112) and
  CTranslate2's converter appends to its vocabulary.

The SentencePiece model is trained in a fraction of a second on the German and English sides
of the WMT 2018 Medline de-en test set (``../shared/data/mt/medline``), with a few built-in
lines as fallback when that file is absent. Weights are random (seeded): the point is loading,
language tokens and constraint forcing, not translation quality. Building both models and their
CTranslate2 conversions takes a few seconds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MEDLINE_DE_EN = REPO.parent / "shared" / "data" / "mt" / "medline" / "wmt18.medline.de-en.tsv"

VOCAB_SIZE = 800
"""SentencePiece pieces (the fairseq vocabulary adds one: ``<pad>``)."""
MAX_POSITIONS = 256
"""The tiny models' longest sequence (also the tokenizers' ``model_max_length``)."""
M2M100_MADEUP_WORDS = 8
"""Embedding rows after M2M100's language tokens (``madeupword0`` …), as in the real models."""

FALLBACK_LINES = (
    "Der Patient hat seit drei Tagen hohes Fieber und Husten.",
    "The patient has had a high fever and a cough for three days.",
    "Die Patientin klagt über starke Kopfschmerzen und Übelkeit.",
    "The patient complains of severe headache and nausea.",
    "Er erhielt zweimal täglich 500 mg Paracetamol gegen die Schmerzen.",
    "He received 500 mg of paracetamol twice daily for the pain.",
    "Bei Verdacht auf Lungenentzündung wurde ein Röntgenbild der Brust angefertigt.",
    "A chest X-ray was taken because pneumonia was suspected.",
    "Der Blutdruck war erhöht, die Herzfrequenz normal.",
    "The blood pressure was raised, the heart rate normal.",
)
"""Always part of the training text (the tests translate such sentences)."""

FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
"""Ids 0–3 of both families' vocabularies."""


def training_lines(path: Path = MEDLINE_DE_EN, limit: int = 400) -> list[str]:
    """German and English sentences (``src`` and ``ref`` columns) of a Medline TSV file, then
    :data:`FALLBACK_LINES`; only the latter when the file is absent."""
    lines: list[str] = []
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                lines += [row["src"].strip(), row["ref"].strip()]
                if len(lines) >= limit:
                    break
    return [line for line in [*lines, *FALLBACK_LINES] if line]


def train_sentencepiece(lines: Sequence[str], vocab_size: int = VOCAB_SIZE,
                        model_type: str = "bpe") -> bytes:
    """A serialised SentencePiece model (``<unk>`` = 0, ``<s>`` = 1, ``</s>`` = 2, no pad)."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
        model_type=model_type, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, hard_vocab_limit=False, num_threads=1, minloglevel=2)
    return model.getvalue()


def fairseq_vocabulary(spm_model: Path) -> dict[str, int]:
    """The fairseq dictionary of a SentencePiece model: ``<s> <pad> </s> <unk>``, then every
    piece after SentencePiece's own three control pieces (the layout of NLLB and M2M100)."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(spm_model))
    vocab = {token: index for index, token in enumerate(FAIRSEQ_SPECIALS)}
    for piece_id in range(processor.get_piece_size()):
        piece = processor.id_to_piece(piece_id)
        if piece not in vocab and not processor.is_control(piece_id) \
                and not processor.is_unknown(piece_id):
            vocab[piece] = len(vocab)
    return vocab


def tiny_config(vocab_size: int, *, d_model: int = 32, layers: int = 1, heads: int = 2,
                ffn: int = 64) -> Any:
    """A tiny :class:`transformers.M2M100Config` with the fairseq special-token ids (the
    decoder starts from ``</s>``, as in NLLB-200 and M2M100)."""
    from transformers import M2M100Config

    return M2M100Config(
        vocab_size=vocab_size, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn, max_position_embeddings=MAX_POSITIONS, dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, encoder_layerdrop=0.0,
        decoder_layerdrop=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2, scale_embedding=True, tie_word_embeddings=True)


def _save_random_model(folder: Path, vocab_size: int, seed: int) -> None:
    import torch
    from transformers import M2M100ForConditionalGeneration

    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(tiny_config(vocab_size))
    model.save_pretrained(str(folder))


def build_tiny_nllb(folder: Path, lines: Sequence[str] | None = None, *, seed: int = 0) -> Path:
    """A tiny random NLLB-200 model in ``folder`` (a transformers directory, ``model_type``
    ``m2m_100``, ``NllbTokenizer`` with ``tokenizer.json`` and ``sentencepiece.bpe.model``)."""
    from transformers import NllbTokenizer
    from transformers.convert_slow_tokenizer import NllbConverter, SentencePieceExtractor

    folder.mkdir(parents=True, exist_ok=True)
    spm_file = folder / "sentencepiece.bpe.model"
    spm_file.write_bytes(train_sentencepiece(training_lines() if lines is None else lines))
    # What NllbTokenizer.from_pretrained does with a lone sentencepiece.bpe.model, except that
    # the language codes are kept: the extractor's (empty) additional_special_tokens would
    # replace NllbTokenizer's default FAIRSEQ_LANGUAGE_CODES.
    extractor: Any = SentencePieceExtractor(str(spm_file))
    pieces: dict[str, Any] = extractor.extract(NllbTokenizer.model)
    pieces.pop("additional_special_tokens", None)
    pieces.pop("extra_special_tokens", None)
    converter: Any = NllbConverter
    tokenizer = NllbTokenizer(**converter.convert_from_spm(**pieces), src_lang="eng_Latn",
                              model_max_length=MAX_POSITIONS)
    tokenizer.save_pretrained(str(folder))
    _save_random_model(folder, len(tokenizer), seed)
    return folder


def build_tiny_m2m100(folder: Path, lines: Sequence[str] | None = None, *,
                      seed: int = 1) -> Path:
    """A tiny random M2M100 model in ``folder`` (``M2M100Tokenizer``: ``vocab.json`` +
    ``sentencepiece.bpe.model``)."""
    from transformers import M2M100Tokenizer
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

    folder.mkdir(parents=True, exist_ok=True)
    spm_file = folder / "sentencepiece.bpe.model"
    spm_file.write_bytes(train_sentencepiece(training_lines() if lines is None else lines))
    vocab_file = folder / "vocab.json"
    vocab_file.write_text(json.dumps(fairseq_vocabulary(spm_file), ensure_ascii=False, indent=1),
                          encoding="utf-8")
    # The language tokens are listed as special tokens, as in the Hub's tokenizer_config.json:
    # M2M100Tokenizer's own attempt to add them never does (its chained `not in` test is
    # always false), so without the list `__en__` would be plain text to decode().
    languages = FAIRSEQ_LANGUAGE_CODES["m2m100"]
    tokenizer = M2M100Tokenizer(vocab_file=str(vocab_file), spm_file=str(spm_file),
                                num_madeup_words=M2M100_MADEUP_WORDS,
                                model_max_length=MAX_POSITIONS,
                                additional_special_tokens=[f"__{code}__" for code in languages])
    tokenizer.save_pretrained(str(folder))
    _save_random_model(folder, len(tokenizer) + M2M100_MADEUP_WORDS, seed)
    return folder


def convert_to_ct2(hf_dir: Path, target: Path, quantization: str | None = None) -> Path:
    """``hf_dir`` converted to CTranslate2 in ``target``, with the tokenizer files beside the
    weights (what ``medstream models convert`` does)."""
    from speech.catalog import convert_to_ctranslate2
    from translate.catalog import TOKENIZER_FILES

    convert_to_ctranslate2(hf_dir, target, TOKENIZER_FILES, quantization)
    return target
