"""The transformers MT backend: any ``AutoModelForSeq2SeqLM`` directory (Marian, NLLB, M2M100),
on CPU or GPU, for models not converted to CTranslate2 and for training recipes.

Beam search is ``model.generate`` with the forced prefix passed as ``decoder_input_ids``.
Attention, when asked for, comes from one teacher-forced pass over the chosen outputs (the
cross-attention of the last decoder layer, averaged over heads), which is exact and simpler
than following beams through ``generate``'s per-step attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from translate.annotation import read_annotation
from translate.backends.base import (
    DecodeRequest,
    DecodeSettings,
    Hypothesis,
    MTBackend,
    smallest_limit,
    tokenizer_limit,
)
from translate.tokenization import ModelTokenizer


class TransformersBackend(MTBackend):
    """A transformers sequence-to-sequence model directory."""

    def __init__(self, path: Path, identifier: str, device: str = "cpu") -> None:
        from transformers import AutoModelForSeq2SeqLM

        self.device = torch.device(device)
        self.model: Any = AutoModelForSeq2SeqLM.from_pretrained(str(path)).to(self.device)
        self.model.eval()
        self.tokenizer = ModelTokenizer.from_directory(path)
        self.annotation = read_annotation(path, self.tokenizer.tokenizer.get_vocab)
        positions = getattr(self.model.config, "max_position_embeddings", None)
        self.max_source_tokens = smallest_limit(
            int(positions) if isinstance(positions, int) else None,
            tokenizer_limit(self.tokenizer.tokenizer))
        self.identifier = f"{identifier} [transformers, {device}]"

    def _ids(self, tokens: Sequence[str]) -> list[int]:
        return [int(i) for i in self.tokenizer.tokenizer.convert_tokens_to_ids(list(tokens))]

    def generate(self, requests: Sequence[DecodeRequest],
                 settings: DecodeSettings) -> list[list[Hypothesis]]:
        results: list[list[Hypothesis]] = []
        # generate() takes one decoder prefix length per call: group requests by it.
        for start in range(0, len(requests), settings.batch_size):
            chunk = requests[start:start + settings.batch_size]
            by_prefix: dict[int, list[int]] = {}
            for index, request in enumerate(chunk):
                by_prefix.setdefault(len(request.target_prefix), []).append(index)
            found: dict[int, list[Hypothesis]] = {}
            for indices in by_prefix.values():
                group = [chunk[i] for i in indices]
                for index, hypotheses in zip(indices, self._generate(group, settings),
                                             strict=True):
                    found[index] = hypotheses
            results.extend(found[i] for i in range(len(chunk)))
        return results

    @torch.inference_mode()
    def _generate(self, requests: Sequence[DecodeRequest],
                  settings: DecodeSettings) -> list[list[Hypothesis]]:
        pad = int(self.model.config.pad_token_id)
        start = int(self.model.config.decoder_start_token_id)
        sources = [self._ids(r.source) for r in requests]
        width = max(len(s) for s in sources)
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in sources],
                                 device=self.device)
        mask = (torch.arange(width, device=self.device)[None, :]
                < torch.tensor([len(s) for s in sources], device=self.device)[:, None]).long()
        prefix = torch.tensor([[start, *self._ids(r.target_prefix)] for r in requests],
                              device=self.device)
        beams = max(settings.beam_size, settings.num_hypotheses)
        out = self.model.generate(
            input_ids=input_ids, attention_mask=mask, decoder_input_ids=prefix,
            num_beams=beams, num_return_sequences=settings.num_hypotheses,
            max_new_tokens=self._new_tokens(settings, prefix.shape[1]),
            length_penalty=settings.length_penalty,
            output_scores=True, return_dict_in_generate=True, do_sample=False)
        sequences = out.sequences
        scores = (out.sequences_scores if beams > 1 and out.sequences_scores is not None
                  else _greedy_scores(out, prefix.shape[1]))
        attention = (self._attention(input_ids, mask, sequences, settings.num_hypotheses)
                     if settings.attention else None)
        eos = int(self.model.config.eos_token_id)
        tokenizer = self.tokenizer.tokenizer
        results: list[list[Hypothesis]] = []
        for row in range(len(requests)):
            hypotheses = []
            for k in range(settings.num_hypotheses):
                flat = row * settings.num_hypotheses + k
                ids = sequences[flat, 1:].tolist()
                length = next((i for i, t in enumerate(ids) if t in (eos, pad)), len(ids))
                tokens = tuple(tokenizer.convert_ids_to_tokens(ids[:length]))
                weights = None
                if attention is not None:
                    source_length = int(mask[row].sum())
                    weights = tuple(tuple(attention[flat, j, :source_length].tolist())
                                    for j in range(length))
                hypotheses.append(Hypothesis(tokens, float(scores[flat]), weights))
            results.append(hypotheses)
        return results

    def _new_tokens(self, settings: DecodeSettings, prefix_length: int) -> int:
        """``settings.max_length``, within what the decoder's positions leave after the
        forced prefix (at least one token)."""
        if self.max_source_tokens is None:
            return settings.max_length
        return max(1, min(settings.max_length, self.max_source_tokens - prefix_length))

    def _attention(self, input_ids: torch.Tensor, mask: torch.Tensor, sequences: torch.Tensor,
                   copies: int) -> torch.Tensor:
        """Cross-attention of the last decoder layer, averaged over heads: for each output
        token (after the start token), its attention over the source."""
        encoder_ids = input_ids.repeat_interleave(copies, dim=0)
        encoder_mask = mask.repeat_interleave(copies, dim=0)
        # SDPA and flash attention return no weights: the pass runs in eager attention.
        implementation = self.model.config._attn_implementation
        if implementation != "eager":
            self.model.set_attn_implementation("eager")
        try:
            output = self.model(input_ids=encoder_ids, attention_mask=encoder_mask,
                                decoder_input_ids=sequences[:, :-1], output_attentions=True)
        finally:
            if implementation != "eager":
                self.model.set_attn_implementation(implementation)
        weights: torch.Tensor = output.cross_attentions[-1].mean(dim=1)
        return weights


def _greedy_scores(out: Any, prefix_length: int) -> torch.Tensor:
    """Mean log-probability of each greedy output's generated tokens."""
    steps = torch.stack([torch.log_softmax(s, dim=-1) for s in out.scores], dim=1)
    chosen = out.sequences[:, prefix_length:prefix_length + steps.shape[1]]
    picked = steps.gather(-1, chosen[..., None])[..., 0]
    return picked.mean(dim=1)
