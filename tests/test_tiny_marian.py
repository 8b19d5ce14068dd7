"""The locally trained de→en Marian model (recipes/mt/tiny_marian.py): data split, training,
CTranslate2 conversion with the tokenizer beside the weights, and agreement of CTranslate2 with
transformers (which checks the ``<pad>``-last vocabulary that CTranslate2's converter needs)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from recipes.mt.tiny_marian import (
    DEV_SEGMENTS,
    METADATA_FILE,
    TinyMarianResult,
    read_wmt23,
    train_dev_split,
)
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

WMT23_PATH = SHARED_DATA / "mt" / "wmt23_terminology" / "wmt23_terminology.de-en.jsonl"
SAMPLES = 4
"""Dev sentences decoded by both runtimes."""
MAX_TOKENS = 40


def _dev_sources(count: int) -> list[str]:
    return [pair.source for pair in train_dev_split().dev[:count]]


def _ct2_greedy(result: TinyMarianResult, texts: list[str]) -> tuple[list[list[str]], Any]:
    import ctranslate2
    from transformers import AutoTokenizer

    tokenizer: Any = AutoTokenizer.from_pretrained(str(result.ct2_dir))
    translator = ctranslate2.Translator(str(result.ct2_dir), compute_type="float32")
    sources = [tokenizer.convert_ids_to_tokens(tokenizer.encode(text)) for text in texts]
    found = translator.translate_batch(sources, beam_size=1, max_decoding_length=MAX_TOKENS,
                                       return_end_token=True, return_attention=True)
    return sources, found


def test_split_holds_out_the_last_wmt23_segments() -> None:
    if not WMT23_PATH.is_file():
        pytest.skip(f"{WMT23_PATH} is absent: the shared MT data is not on this machine")
    rows = read_wmt23(WMT23_PATH)
    split = train_dev_split()
    assert len(split.dev) == DEV_SEGMENTS == len(split.dev_rows)
    assert [row["id"] for row in split.dev_rows] == [row["id"] for row in rows[-DEV_SEGMENTS:]]
    held_out = {f"wmt23:{row['id']}" for row in split.dev_rows}
    assert not held_out & {pair.origin for pair in split.train}
    assert not {pair.source for pair in split.dev} & {pair.source for pair in split.train}
    assert any(pair.origin.startswith("medline:") for pair in split.train)
    assert all(pair.source and pair.target for pair in split.train)


@pytest.mark.slow
def test_training_lowers_the_loss(tiny_marian: TinyMarianResult) -> None:
    assert len(tiny_marian.losses) == tiny_marian.config.max_steps
    assert all(math.isfinite(loss) for loss in tiny_marian.losses)
    assert tiny_marian.last_loss < tiny_marian.first_loss - 2.0
    metadata = json.loads((tiny_marian.ct2_dir / METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["architecture"] == "marian"
    assert (metadata["source_language"], metadata["target_language"]) == ("de", "en")
    assert metadata["steps"] == tiny_marian.config.max_steps


@pytest.mark.slow
def test_vocabulary_puts_pad_last(tiny_marian: TinyMarianResult) -> None:
    import torch
    from transformers import AutoTokenizer, MarianMTModel

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_marian.ct2_dir))
    assert type(tokenizer).__name__ == "MarianTokenizer"
    vocab = tokenizer.get_vocab()
    assert (tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1)
    assert tokenizer.pad_token_id == len(vocab) - 1 == max(vocab.values())
    ct2_vocab = json.loads((tiny_marian.ct2_dir / "shared_vocabulary.json").read_text("utf-8"))
    assert ct2_vocab == sorted(vocab, key=vocab.__getitem__)[:-1]  # the converter drops <pad>
    model: Any = MarianMTModel.from_pretrained(str(tiny_marian.hf_dir))
    assert model.config.decoder_start_token_id == model.config.pad_token_id == len(vocab) - 1
    assert model.config.eos_token_id == 0
    pad_row = model.get_input_embeddings().weight[tokenizer.pad_token_id]
    assert torch.count_nonzero(pad_row) == 0


@pytest.mark.slow
def test_ctranslate2_translates_with_attention(tiny_marian: TinyMarianResult) -> None:
    texts = _dev_sources(SAMPLES)
    sources, found = _ct2_greedy(tiny_marian, texts)
    for source, result in zip(sources, found, strict=True):
        assert source[-1] == "</s>"
        tokens = result.hypotheses[0]
        assert tokens and all(token not in ("<pad>", "<unk>") for token in tokens[:-1])
        attention = result.attention[0]
        assert len(attention) == len(tokens)
        assert all(len(row) == len(source) for row in attention)
        assert all(abs(sum(row) - 1.0) < 1e-3 for row in attention)
    ended = [result.hypotheses[0] for result in found if result.hypotheses[0][-1] == "</s>"]
    assert ended, "no translation ended with </s>"
    words = {token.lstrip("▁").lower() for result in found for token in result.hypotheses[0]}
    assert words & {"the", "of", "and", "in", "with", "patients"}, words


@pytest.mark.slow
def test_transformers_and_ctranslate2_agree(tiny_marian: TinyMarianResult) -> None:
    import torch
    from transformers import AutoTokenizer, MarianMTModel

    texts = _dev_sources(SAMPLES)
    _, found = _ct2_greedy(tiny_marian, texts)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_marian.hf_dir))
    model: Any = MarianMTModel.from_pretrained(str(tiny_marian.hf_dir))
    model.eval()
    for text, result in zip(texts, found, strict=True):
        with torch.no_grad():
            output = model.generate(**tokenizer(text, return_tensors="pt"), num_beams=1,
                                    do_sample=False, max_length=MAX_TOKENS + 1)
        ids = output[0].tolist()
        assert ids[0] == model.config.decoder_start_token_id
        assert tokenizer.convert_ids_to_tokens(ids[1:]) == result.hypotheses[0]


@pytest.mark.slow
def test_medstream_loads_it(tiny_marian: TinyMarianResult) -> None:
    from translate.backends.base import DecodeRequest, DecodeSettings
    from translate.catalog import load_mt

    backend = load_mt(str(tiny_marian.ct2_dir), allow_download=False)
    source = backend.tokenizer.source(_dev_sources(1)[0], "de", "en")
    settings = DecodeSettings(beam_size=2, max_length=MAX_TOKENS, attention=True)
    [[best]] = backend.generate([DecodeRequest(source.tokens)], settings)
    assert best.tokens
    assert best.attention is not None
    assert len(best.attention[0]) == len(source.tokens)
    assert backend.tokenizer.detokenize(best.tokens)
