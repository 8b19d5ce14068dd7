"""A pretrained Marian, NLLB-200 or M2M100 model with the term annotation markers added to
its vocabulary, so that each marker is one token with an embedding of its own.

* **Marian** (OPUS-MT): CTranslate2's converter drops the *last* vocabulary entry, which must
  be ``<pad>`` (see :mod:`recipes.mt.tiny_marian`). The markers are therefore inserted just
  before ``<pad>``: the vocabulary is rewritten, the embedding rows (and the output bias) are
  moved to match, and the pad id, decoder start id and generation settings follow.
* **NLLB-200 / M2M100**: the markers are added tokens after the vocabulary and the language
  codes; the embeddings grow to cover them (M2M100 keeps its ``madeupword`` rows after them,
  as CTranslate2's converter expects).

New rows start from the mean of the existing embeddings plus a little seeded noise.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recipes.mt.tiny_marian import PAD, check_vocabulary_ids
from translate.tokenization import family_of


def load_with_markers(model_dir: Path, markers: Sequence[str], folder: Path,
                      seed: int = 0) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of the transformers model in ``model_dir`` with ``markers``
    added; the tokenizer is saved in ``folder`` (where the model will be saved too)."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir))
    folder.mkdir(parents=True, exist_ok=True)
    if family_of(tokenizer) == "marian":
        return _marian(model, tokenizer, model_dir, markers, folder, seed)
    tokenizer.add_tokens(list(markers))
    size = len(tokenizer) + int(getattr(tokenizer, "num_madeup_words", 0) or 0)
    if size > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(size, mean_resizing=True)
    tokenizer.save_pretrained(str(folder))
    return model, tokenizer


def _marian(model: Any, tokenizer: Any, model_dir: Path, markers: Sequence[str], folder: Path,
            seed: int) -> tuple[Any, Any]:
    import torch
    from transformers import MarianTokenizer

    if getattr(tokenizer, "separate_vocabs", False):
        raise SystemExit(f"{model_dir}: Marian models with separate source and target "
                         "vocabularies are not supported; choose a joint-vocabulary OPUS-MT model")
    check_vocabulary_ids(tokenizer)
    vocab = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))
    old_pad = vocab.pop(PAD)
    added = [m for m in markers if m not in vocab]
    for marker in added:
        vocab[marker] = len(vocab)
    vocab[PAD] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1),
                                       encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        shutil.copyfile(model_dir / name, folder / name)
    fresh = MarianTokenizer(
        source_spm=str(folder / "source.spm"), target_spm=str(folder / "target.spm"),
        vocab=str(folder / "vocab.json"), source_lang=tokenizer.source_lang,
        target_lang=tokenizer.target_lang, eos_token=tokenizer.eos_token,
        unk_token=tokenizer.unk_token, pad_token=PAD,
        model_max_length=tokenizer.model_max_length)
    fresh.add_tokens(list(markers))
    fresh.save_pretrained(str(folder))
    check_vocabulary_ids(fresh)

    size = len(vocab)
    generator = torch.Generator().manual_seed(seed)
    modules = (model.get_input_embeddings, lambda: model.get_decoder().embed_tokens,
               model.get_output_embeddings)
    with torch.no_grad():
        old = [module().weight.detach().clone() for module in modules]
        bias = model.final_logits_bias.detach().clone()
        model.resize_token_embeddings(size, mean_resizing=False)
        for module, rows in zip(modules, old, strict=True):
            body = rows[:old_pad]
            noise = torch.randn((len(added), body.shape[1]), generator=generator)
            new = body.mean(0) + 0.1 * body.std() * noise
            module().weight.copy_(torch.cat([body, new, torch.zeros_like(rows[old_pad:])]))
        model.final_logits_bias.copy_(torch.cat(
            [bias[:, :old_pad], bias[:, :old_pad].min().expand(1, len(added)),
             bias[:, old_pad:]], dim=1))
    pad = size - 1
    for settings in (model.config, model.generation_config):
        settings.pad_token_id = pad
        settings.decoder_start_token_id = pad
    model.config.vocab_size = model.config.decoder_vocab_size = size
    model.generation_config.bad_words_ids = [[pad]]
    return model, fresh
