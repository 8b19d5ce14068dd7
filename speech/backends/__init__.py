"""ASR backends behind the :class:`ASRBackend` protocol."""

from speech.backends.base import ASRBackend

__all__ = ["ASRBackend"]
