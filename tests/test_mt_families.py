"""The NLLB-200 and M2M100 code paths of :mod:`translate`, with tiny random models built here
(:mod:`tests.mt_families`, no Hub): family detection and language tokens, source tokens with
their characters, CTranslate2 conversion and loading, both backends, and the three term modes
(hard mode must force every term even into a random model's output)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from speech.errors import InvalidOptionError, ModelNotFoundError
from tests.mt_families import build_tiny_m2m100, build_tiny_nllb, convert_to_ct2
from translate.backends.base import DecodeRequest, DecodeSettings, MTBackend
from translate.backends.ct2 import CTranslate2Backend
from translate.catalog import load_mt, model_format, resolve_mt_model
from translate.decoding import ConstrainedDecoder, DecodeItem
from translate.tokenization import WORD_START, ModelTokenizer
from translate.translator import Terminology, Translator
from translate.types import TermConstraint, TermMode, TranslateOptions

FAMILIES = ("nllb", "m2m100")
BACKENDS = ("ctranslate2", "transformers")
LANGUAGE_TOKENS = {"nllb": {"en": "eng_Latn", "de": "deu_Latn"},
                   "m2m100": {"en": "__en__", "de": "__de__"}}
EOS = "</s>"
MAX_LENGTH = 24

SENTENCES = (
    "Der Patient hat seit drei Tagen hohes Fieber und Husten.",
    "Die Patientin klagt über starke Kopfschmerzen und Übelkeit.",
    "Er erhielt zweimal täglich 500 mg Paracetamol gegen die Schmerzen.",
)
TERMS = (
    (("Fieber", "fever"), ("Husten", "cough")),
    (("Kopfschmerzen", "headache"), ("Übelkeit", "nausea")),
    (("Paracetamol", "acetaminophen"),),
)


def constraints() -> list[list[TermConstraint]]:
    """The term pairs of :data:`TERMS` at their place in :data:`SENTENCES`; the second term of
    the first sentence without a position (hard mode then appends it)."""
    found = []
    for text, pairs in zip(SENTENCES, TERMS, strict=True):
        row = []
        for index, (source, target) in enumerate(pairs):
            start = text.index(source)
            if (text, index) == (SENTENCES[0], 1):
                row.append(TermConstraint(source, target, origin="segment"))
            else:
                row.append(TermConstraint(source, target, start, start + len(source),
                                          origin="segment"))
        found.append(row)
    return found


@dataclass(frozen=True)
class TinyModel:
    family: str
    hf_dir: Path
    ct2_dir: Path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    """Both families, as transformers directories and CTranslate2 conversions (float32)."""
    root = tmp_path_factory.mktemp("mt-families")
    models = {}
    for family, build in (("nllb", build_tiny_nllb), ("m2m100", build_tiny_m2m100)):
        hf_dir = build(root / f"tiny-{family}")
        ct2_dir = convert_to_ct2(hf_dir, root / f"tiny-{family}-ct2")
        models[family] = TinyModel(family, hf_dir, ct2_dir)
    return models


@pytest.fixture(scope="module")
def backends(tiny_models: dict[str, TinyModel]) -> Iterator[dict[tuple[str, str], MTBackend]]:
    """Every (family, backend) pair, loaded once through :func:`load_mt`."""
    loaded: dict[tuple[str, str], MTBackend] = {}
    for family, model in tiny_models.items():
        loaded[family, "ctranslate2"] = load_mt(str(model.ct2_dir))
        loaded[family, "transformers"] = load_mt(str(model.hf_dir), backend="transformers")
    yield loaded


# ----------------------------------------------------------------------- tokenizers


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("folder", ["hf_dir", "ct2_dir"])
def test_family_and_language_tokens(tiny_models: dict[str, TinyModel], family: str,
                                    folder: str) -> None:
    tokenizer = ModelTokenizer.from_directory(getattr(tiny_models[family], folder))
    expected = {"nllb": "NllbTokenizer", "m2m100": "M2M100Tokenizer"}[family]
    assert type(tokenizer.tokenizer).__name__ == expected
    assert tokenizer.family == family
    assert tokenizer.target_start("en") == (LANGUAGE_TOKENS[family]["en"],)
    assert tokenizer.target_start("de") == (LANGUAGE_TOKENS[family]["de"],)
    assert tokenizer.end_token == EOS
    if family == "nllb":
        assert tokenizer.language_code("de") == "deu_Latn"
        assert tokenizer.language_code("fra_Latn") == "fra_Latn"  # a FLORES code as is
    else:
        assert tokenizer.language_code("de") == "de"


@pytest.mark.parametrize("family", FAMILIES)
def test_source_tokens_cover_their_characters(tiny_models: dict[str, TinyModel],
                                              family: str) -> None:
    tokenizer = ModelTokenizer.from_directory(tiny_models[family].hf_dir)
    unk = str(tokenizer.tokenizer.unk_token)
    for text in (*SENTENCES, "Dosis: 5 µg/kg  (zweimal täglich), Temperatur 39,5 °C."):
        source = tokenizer.source(text, "de", "en")
        assert source.tokens[0] == LANGUAGE_TOKENS[family]["de"]
        assert source.tokens[-1] == EOS
        assert source.offsets[0] is None and source.offsets[-1] is None
        assert LANGUAGE_TOKENS[family]["en"] not in source.tokens
        assert unk not in source.tokens[:1] + source.tokens[-1:]
        for token, span in zip(source.tokens[1:-1], source.offsets[1:-1], strict=True):
            piece = token.replace(WORD_START, "")
            if not piece:  # a bare word-start mark covers nothing
                assert span is None
                continue
            assert span is not None, (token, text)
            if token == unk:  # characters outside the tiny vocabulary: still text
                covered = text[span[0]:span[1]]
                assert covered.strip() == covered != "", (span, text)
                hf = tokenizer.tokenizer
                assert all(hf.unk_token_id in hf.convert_tokens_to_ids(hf.tokenize(char))
                           for char in covered), (covered, text)
            else:
                assert text[span[0]:span[1]] == piece, (token, span, text)
    # A constraint's characters find exactly the tokens of its word.
    text = SENTENCES[0]
    source = tokenizer.source(text, "de", "en")
    start = text.index("Fieber")
    indices = source.covering(start, start + len("Fieber"))
    assert "".join(source.tokens[i] for i in indices) == WORD_START + "Fieber"


@pytest.mark.parametrize("family", FAMILIES)
def test_term_tokens_and_detokenize(tiny_models: dict[str, TinyModel], family: str) -> None:
    tokenizer = ModelTokenizer.from_directory(tiny_models[family].ct2_dir)
    language = LANGUAGE_TOKENS[family]["en"]
    tokens = tokenizer.term_tokens("fever", "en")
    assert "".join(tokens) == WORD_START + "fever"
    assert language not in tokens and EOS not in tokens
    assert tokenizer.detokenize([language, *tokens, EOS]) == "fever"
    assert tokenizer.detokenize([language, *tokenizer.term_tokens("500 mg", "en")]) == "500 mg"
    # term_tokens switches the tokenizer to target mode and back: the source is unchanged.
    assert tokenizer.source("Fieber", "de", "en").tokens[0] == LANGUAGE_TOKENS[family]["de"]


@pytest.mark.parametrize("family", ["nllb", "m2m100"])
def test_unknown_source_language_is_rejected(tiny_models: dict[str, TinyModel],
                                             family: str) -> None:
    tokenizer = ModelTokenizer.from_directory(tiny_models[family].hf_dir)
    with pytest.raises(InvalidOptionError, match="does not know language 'xx'"):
        tokenizer.source("Hallo Welt", "xx", "en")


@pytest.mark.parametrize("family", ["nllb", "m2m100"])
def test_unknown_target_language_is_rejected(tiny_models: dict[str, TinyModel],
                                             family: str) -> None:
    tokenizer = ModelTokenizer.from_directory(tiny_models[family].hf_dir)
    with pytest.raises(InvalidOptionError, match="does not know language 'xx'"):
        tokenizer.target_start("xx")


# ----------------------------------------------------------------------- catalog


@pytest.mark.parametrize("family", FAMILIES)
def test_conversion_keeps_the_language_tokens(tiny_models: dict[str, TinyModel],
                                              family: str) -> None:
    model = tiny_models[family]
    config = json.loads((model.hf_dir / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "m2m_100"
    vocabulary = json.loads((model.ct2_dir / "shared_vocabulary.json").read_text(
        encoding="utf-8"))
    assert len(vocabulary) == config["vocab_size"]
    assert vocabulary[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    tokenizer = ModelTokenizer.from_directory(model.ct2_dir).tokenizer
    for token in LANGUAGE_TOKENS[family].values():
        assert vocabulary.index(token) == tokenizer.convert_tokens_to_ids(token)
    ct2_config = json.loads((model.ct2_dir / "config.json").read_text(encoding="utf-8"))
    assert ct2_config["decoder_start_token"] == EOS
    assert not ct2_config["add_source_bos"] and not ct2_config["add_source_eos"]


@pytest.mark.parametrize("family", FAMILIES)
def test_resolve_reports_the_format(tiny_models: dict[str, TinyModel], family: str) -> None:
    model = tiny_models[family]
    assert model_format(model.hf_dir) == "transformers"
    assert model_format(model.ct2_dir) == "ctranslate2"
    hf = resolve_mt_model(str(model.hf_dir))
    ct2 = resolve_mt_model(str(model.ct2_dir))
    assert (hf.format, ct2.format) == ("transformers", "ctranslate2")
    assert hf.path == model.hf_dir.resolve() and "sha256:" in hf.identifier
    with pytest.raises(InvalidOptionError, match="transformers backend needs"):
        load_mt(str(model.ct2_dir), backend="transformers")


@pytest.mark.parametrize("family", FAMILIES)
def test_auto_backend_converts_into_the_cache(tiny_models: dict[str, TinyModel],
                                              family: str) -> None:
    from speech.catalog import cache_dir

    model = tiny_models[family]
    backend = load_mt(str(model.hf_dir))
    assert isinstance(backend, CTranslate2Backend)
    assert backend.tokenizer.family == family
    converted = list((cache_dir() / "ct2").glob(f"{model.hf_dir.name}-*/model.bin"))
    assert len(converted) == 1
    assert (converted[0].parent / "sentencepiece.bpe.model").is_file()
    request = DecodeRequest(backend.tokenizer.source(SENTENCES[0], "de", "en").tokens,
                            backend.tokenizer.target_start("en"))
    hypothesis = backend.generate([request], DecodeSettings(beam_size=1, max_length=4))[0][0]
    assert hypothesis.tokens[0] == LANGUAGE_TOKENS[family]["en"]


@pytest.mark.parametrize(("name", "repo_id"), [
    ("nllb-200-distilled-600M", "facebook/nllb-200-distilled-600M"),
    ("m2m100_418M", "facebook/m2m100_418M")])
def test_missing_catalog_model_names_the_hub_id(name: str, repo_id: str) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        load_mt(name, allow_download=False)
    assert caught.value.name == name
    assert repo_id in str(caught.value)
    assert "huggingface-cli download" in str(caught.value)


# ----------------------------------------------------------------------- decoding


def _items(tokenizer: ModelTokenizer) -> list[DecodeItem]:
    """What :class:`Translator` decodes for :data:`SENTENCES` (numbers included)."""
    terminology = Terminology(numbers=True)
    return [DecodeItem(tokenizer.source(text, "de", "en"), "en",
                       tuple(terminology.constraints(text, "de", "en", row)))
            for text, row in zip(SENTENCES, constraints(), strict=True)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", BACKENDS)
def test_outputs_start_with_the_target_language(backends: dict[tuple[str, str], MTBackend],
                                                family: str, kind: str) -> None:
    backend = backends[family, kind]
    language = LANGUAGE_TOKENS[family]["en"]
    requests = [DecodeRequest(item.source.tokens, backend.tokenizer.target_start("en"))
                for item in _items(backend.tokenizer)]
    found = backend.generate(requests, DecodeSettings(beam_size=2, num_hypotheses=2,
                                                      max_length=8, attention=True))
    assert len(found) == len(SENTENCES)
    for request, hypotheses in zip(requests, found, strict=True):
        assert len(hypotheses) == 2
        for hypothesis in hypotheses:
            assert hypothesis.tokens[0] == language
            assert EOS not in hypothesis.tokens
            assert 1 < len(hypothesis.tokens) <= 1 + 8
            assert hypothesis.attention is not None
            assert len(hypothesis.attention) == len(hypothesis.tokens)
            assert all(len(row) == len(request.source) for row in hypothesis.attention)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", BACKENDS)
def test_hard_mode_forces_every_term(backends: dict[tuple[str, str], MTBackend], family: str,
                                     kind: str) -> None:
    backend = backends[family, kind]
    codes = set(LANGUAGE_TOKENS[family].values())
    options = TranslateOptions(terms="hard", max_length=MAX_LENGTH)
    translator = Translator(backend, Terminology(numbers=True))
    results = translator.translate(list(SENTENCES), "de", "en", options, terms=constraints())
    assert [r.source_text for r in results] == list(SENTENCES)
    for result, pairs in zip(results, TERMS, strict=True):
        assert result.mode == "hard" and result.target_language == "en"
        wanted = {target for _, target in pairs}
        assert wanted <= {use.target for use in result.terms}
        assert result.all_terms_satisfied, (result.text, result.terms)
        assert all(use.forced for use in result.terms if use.target in wanted)
        assert not any(code in result.text for code in codes), result.text
        assert result.score is not None
    assert "500 mg" in [use.target for use in results[2].terms]  # numbers are copied too
    # The decoder's own outputs: language token first, then the forced terms.
    decoded = ConstrainedDecoder(backend).decode(_items(backend.tokenizer), "hard", options)
    for outcome, result in zip(decoded, results, strict=True):
        assert outcome.hypothesis.tokens[0] == LANGUAGE_TOKENS[family]["en"]
        assert outcome.forced
        assert outcome.forced_end > 1
        assert not codes & set(outcome.hypothesis.tokens[1:])
        assert outcome.text == result.text


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("mode", ["soft", "none"])
def test_soft_and_none_report_terms(backends: dict[tuple[str, str], MTBackend], family: str,
                                    kind: str, mode: TermMode) -> None:
    backend = backends[family, kind]
    translator = Translator(backend, Terminology(numbers=True))
    options = TranslateOptions(terms=mode, max_length=MAX_LENGTH, n_best=4)
    results = translator.translate(list(SENTENCES), "de", "en", options, terms=constraints())
    codes = set(LANGUAGE_TOKENS[family].values())
    for result, pairs in zip(results, TERMS, strict=True):
        assert result.mode == mode
        assert {target for _, target in pairs} <= {use.target for use in result.terms}
        assert not any(use.forced for use in result.terms)
        assert all(isinstance(use.satisfied, bool) for use in result.terms)
        assert not any(code in result.text for code in codes), result.text


def test_transformers_backend_attention_as_loaded(tiny_models: dict[str, TinyModel]) -> None:
    backend = load_mt(str(tiny_models["nllb"].hf_dir), backend="transformers")
    source = backend.tokenizer.source(SENTENCES[0], "de", "en")
    found = backend.generate([DecodeRequest(source.tokens, ("eng_Latn",))],
                             DecodeSettings(beam_size=1, max_length=4, attention=True))
    hypothesis = found[0][0]
    assert hypothesis.attention is not None
    assert len(hypothesis.attention) == len(hypothesis.tokens)
