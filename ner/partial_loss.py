"""A token-classification loss for corpora that annotate only some of the model's types.

The tagger learns MEDICATION, MEDICAL_CONDITION and ANATOMY from the union of NCBI-disease
(diseases only), BC5CDR (chemicals and diseases) and AnatEM (anatomy only). A word tagged ``O``
in NCBI-disease is "not a disease", but it may well be a drug or an organ that nobody marked.
Plain cross-entropy would teach the model that it is none of them and so to miss real entities.

Instead each scored word gets a *set* of acceptable labels: its gold label, plus, when the gold
label is ``O``, ``B-T`` and ``I-T`` for every type T the word's corpus does not annotate. The
loss is the negative log of the probability mass on that set,
``-log Σ_{y ∈ allowed} p(y | x)``, a log-sum-exp of log-probabilities: moving probability
between the allowed labels costs nothing, moving it outside costs as much as usual. A fully
annotated sentence (every type annotated) gets ordinary cross-entropy.

A model with one head per corpus (:mod:`ner.heads`) passes ``valid``: the softmax of a position
then runs over its own head's labels only, and the loss is that head's cross-entropy.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

from ner.schema import EntityType


def allowed_labels(tag: str, labels: Sequence[str],
                   unannotated: Collection[EntityType]) -> tuple[int, ...]:
    """Indices into ``labels`` that are acceptable for a word with gold IOB2 ``tag``.

    ``unannotated`` are the model's types that the word's corpus never marks. Raises ValueError
    when ``tag`` is not one of ``labels``.
    """
    index = {label: i for i, label in enumerate(labels)}
    if tag not in index:
        raise ValueError(f"tag {tag!r} is not one of the model's labels {tuple(labels)}")
    allowed = {index[tag]}
    if tag == "O":
        for kind in unannotated:
            allowed.update(index[f"{p}-{kind.value}"] for p in ("B", "I")
                           if f"{p}-{kind.value}" in index)
    return tuple(sorted(allowed))


def partial_label_loss(logits: torch.Tensor, allowed: torch.Tensor,
                       valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over scored positions of ``-log Σ_{y allowed} softmax(logits)_y``.

    ``logits`` is (batch, positions, labels); ``allowed`` a boolean tensor of the same shape.
    Positions with no allowed label (padding, special tokens, continuation sub-tokens) are not
    scored. ``valid`` (same shape, or broadcastable to it) limits the softmax to those labels;
    ``allowed`` must lie within it. Returns a zero that still carries a gradient when nothing
    is scored.
    """
    if logits.shape != allowed.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and allowed {tuple(allowed.shape)} "
                         "differ in shape")
    scored = allowed.any(dim=-1)
    if not bool(scored.any()):
        return logits.sum() * 0.0
    if valid is not None:
        if bool((allowed & ~valid).any()):
            raise ValueError("an allowed label lies outside the valid labels of its position")
        logits = logits.masked_fill(~valid, float("-inf"))
    log_probs = logits.float().log_softmax(dim=-1)
    marginal = torch.logsumexp(log_probs.masked_fill(~allowed, float("-inf")), dim=-1)
    return -marginal[scored].mean()
