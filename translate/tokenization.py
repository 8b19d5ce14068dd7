"""Tokens in and out of an MT model, whatever its family (Marian/OPUS-MT, NLLB-200, M2M100).

Backends work on token strings (CTranslate2's interface). :class:`ModelTokenizer` wraps the
model's Hugging Face tokenizer and adds what constrained decoding needs:

* the source tokens **with the characters each one covers**, so that a glossary hit in the
  text can be found among the tokens the decoder attends to;
* the target-language tokens a decode starts with (``eng_Latn`` for NLLB, ``__en__`` for
  M2M100, none for a bilingual Marian model; ``>>fra<<``-style tokens of multi-target OPUS-MT
  models go on the source side);
* a term's tokens as the model writes it at the start of a word, to force it into the output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from speech.errors import InvalidOptionError

Family = Literal["marian", "nllb", "m2m100"]

# ISO 639-1 → FLORES-200 codes of NLLB-200, for the languages of medical interpreting we meet
# most; a FLORES code given directly ("deu_Latn") is used as is.
NLLB_CODES = {
    "ar": "arb_Arab", "bn": "ben_Beng", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn",
    "es": "spa_Latn", "fa": "pes_Arab", "fr": "fra_Latn", "hi": "hin_Deva", "it": "ita_Latn",
    "ja": "jpn_Jpan", "ko": "kor_Hang", "nl": "nld_Latn", "pl": "pol_Latn", "pt": "por_Latn",
    "ro": "ron_Latn", "ru": "rus_Cyrl", "so": "som_Latn", "sw": "swh_Latn", "tl": "tgl_Latn",
    "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab", "vi": "vie_Latn",
    "zh": "zho_Hans",
}

_FLORES_CODE = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")

WORD_START = "▁"
"""SentencePiece's mark of a token that begins a word."""


@dataclass(frozen=True)
class SourceTokens:
    """A source text as the model reads it."""

    text: str
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int] | None, ...]
    """Characters of ``text`` each token covers; None for special tokens."""

    def covering(self, start: int, end: int) -> list[int]:
        """Indices of the tokens that overlap characters ``start``..``end``."""
        return [i for i, span in enumerate(self.offsets)
                if span is not None and span[0] < end and start < span[1]]


def family_of(tokenizer: Any) -> Family:
    name = type(tokenizer).__name__
    if name.startswith("Nllb"):
        return "nllb"
    if name.startswith("M2M100"):
        return "m2m100"
    if name.startswith("Marian"):
        return "marian"
    raise InvalidOptionError(f"unsupported MT tokenizer {name}: medstream knows Marian "
                             "(OPUS-MT), NLLB-200 and M2M100 models")


class ModelTokenizer:
    """A model's tokenizer with language handling and character offsets."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.family = family_of(tokenizer)

    @classmethod
    def from_directory(cls, path: Path) -> ModelTokenizer:
        from transformers import AutoTokenizer

        try:
            return cls(AutoTokenizer.from_pretrained(str(path)))
        except (OSError, ValueError) as error:
            raise InvalidOptionError(f"{path}: no usable tokenizer in the model directory "
                                     f"({error}); a CTranslate2 conversion must copy the "
                                     "tokenizer files (medstream models convert does)") from error

    # ---------------------------------------------------------------- language codes

    def language_code(self, language: str) -> str:
        """The tokenizer's code for an ISO 639-1 language (or a code it knows already)."""
        code = NLLB_CODES.get(language, language) if self.family == "nllb" else language
        if self.family in ("nllb", "m2m100"):
            known = self._language_codes()
            if known and code not in known:
                raise InvalidOptionError(f"the model does not know language {language!r}")
        return code

    def _language_codes(self) -> set[str]:
        if self.family == "m2m100":
            return set(getattr(self.tokenizer, "lang_code_to_token", {}) or ())
        return {t for t in self.tokenizer.all_special_tokens if _FLORES_CODE.fullmatch(t)}

    def target_start(self, language: str) -> tuple[str, ...]:
        """Tokens every output in ``language`` starts with (forced as a decode prefix)."""
        if self.family == "nllb":
            return (self.language_code(language),)
        if self.family == "m2m100":
            return (self.tokenizer.get_lang_token(self.language_code(language)),)
        return ()

    # ---------------------------------------------------------------- source side

    def source(self, text: str, language: str, target_language: str) -> SourceTokens:
        """The tokens the encoder reads for ``text`` with their character offsets."""
        tok = self.tokenizer
        if self.family in ("nllb", "m2m100"):
            tok.src_lang = self.language_code(language)
        prefix = ""
        if self.family == "marian" and self._multi_target():
            prefix = f">>{target_language}<< "
        ids = tok(prefix + text).input_ids
        tokens = tuple(tok.convert_ids_to_tokens(ids))
        # An unknown character is text, not markup: it is aligned like any other piece.
        special = (set(tok.all_special_tokens) - {tok.unk_token}) | ({tokens[0]} if prefix
                                                                      else set())
        return SourceTokens(text, tokens, tuple(align_pieces(text, tokens, special)))

    def _multi_target(self) -> bool:
        vocab = self.tokenizer.get_vocab()
        return any(t.startswith(">>") and t.endswith("<<") for t in list(vocab)[:2000])

    # ---------------------------------------------------------------- target side

    def term_tokens(self, term: str, language: str) -> tuple[str, ...]:
        """The target tokens of ``term`` written as a word of its own."""
        tok = self.tokenizer
        if self.family in ("nllb", "m2m100"):
            tok.tgt_lang = self.language_code(language)
        ids = tok(text_target=term, add_special_tokens=False).input_ids
        return tuple(tok.convert_ids_to_tokens(ids))

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Text of output tokens (special and language tokens dropped)."""
        tok = self.tokenizer
        ids = tok.convert_tokens_to_ids(list(tokens))
        return str(tok.decode(ids, skip_special_tokens=True)).strip()

    @property
    def end_token(self) -> str:
        return str(self.tokenizer.eos_token)


def align_pieces(text: str, tokens: Sequence[str],
                 special: set[str]) -> list[tuple[int, int] | None]:
    """Character spans of SentencePiece tokens in the text they came from.

    Each piece (without its word-start mark) is looked for a little after where the previous
    one ended; pieces that cannot be found (normalised by the tokenizer, unknown characters)
    share the characters up to the next piece that can be. Special tokens and a bare
    word-start mark cover nothing (None).
    """
    spans: list[tuple[int, int] | None] = []
    position = 0
    pending: list[int] = []
    pending_start = 0
    for token in tokens:
        piece = token.replace(WORD_START, " ").strip()
        if token in special or not piece:
            spans.append(None)
            continue
        while position < len(text) and text[position].isspace():
            position += 1
        found = text.find(piece, position)
        if found < 0 or found - position > _LOOKAHEAD + 4 * len(pending):
            if not pending:
                pending_start = position
            pending.append(len(spans))
            spans.append(None)
            continue
        gap_end = found
        while gap_end > pending_start + 1 and text[gap_end - 1].isspace():
            gap_end -= 1
        for index in pending:
            spans[index] = (pending_start, max(gap_end, pending_start + 1))
        pending.clear()
        spans.append((found, found + len(piece)))
        position = found + len(piece)
    for index in pending:
        spans[index] = (pending_start, len(text)) if pending_start < len(text) else None
    return spans


_LOOKAHEAD = 4
"""Characters a piece may lie beyond the previous one (text the tokenizer normalised away)."""
