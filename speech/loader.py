"""Load a recogniser by name: the catalog finds the weights, the right backend loads them."""

from __future__ import annotations

import threading

from speech.backends.faster_whisper import FasterWhisperBackend
from speech.catalog import resolve_asr_model
from speech.options import ModelOptions

_lock = threading.Lock()
_loaded: dict[tuple[str, ModelOptions], FasterWhisperBackend] = {}


def load_asr(name: str = "base", options: ModelOptions | None = None, *,
             allow_download: bool = True) -> FasterWhisperBackend:
    """Return the recogniser for ``name``, loading it on first use and sharing it afterwards.

    ``name`` is a catalog name (``base``, ``tiny.en``, ``large-v3`` …), a Hub id, or a
    directory. Raises :class:`~speech.errors.ModelNotFoundError` when it cannot be found.
    """
    options = options or ModelOptions()
    key = (name, options)
    with _lock:
        backend = _loaded.get(key)
        if backend is None:
            backend = FasterWhisperBackend(
                resolve_asr_model(name, allow_download=allow_download), options)
            _loaded[key] = backend
        return backend
