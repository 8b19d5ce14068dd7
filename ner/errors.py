"""Errors of the NER stage a user can cause (each says what to do)."""

from __future__ import annotations

from speech.errors import MedstreamError


class TaggerModelError(MedstreamError):
    """A directory is not a token-classification model medstream can use as a tagger."""


class NerDataError(MedstreamError):
    """An NER data file (a raw JSONL corpus) cannot be read as one."""
