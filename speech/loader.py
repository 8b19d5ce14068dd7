"""Load a recogniser by name: the catalog finds the weights, the right backend loads them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from speech.backends.faster_whisper import FasterWhisperBackend, resolve_device
from speech.catalog import resolve_asr_model
from speech.options import ModelOptions

_lock = threading.Lock()
_loaded: dict[tuple[str, ModelOptions], Any] = {}


def load_asr(name: str = "base", options: ModelOptions | None = None, *,
             allow_download: bool = True) -> Any:
    """Return the recogniser for ``name``, loading it on first use and sharing it afterwards.

    ``name`` is a catalog name (``base``, ``tiny.en``, ``large-v3`` …), a Hub id, or a
    directory: a faster-whisper backend. A path ending in ``.nemo`` loads a NeMo cache-aware
    streaming model (:mod:`speech.backends.nemo_streaming`, needs the ``nemo`` extra). Raises
    :class:`~speech.errors.ModelNotFoundError` when it cannot be found.
    """
    options = options or ModelOptions()
    key = (name, options)
    with _lock:
        backend = _loaded.get(key)
        if backend is None:
            if name.endswith(".nemo"):
                from speech.backends.nemo_streaming import load_nemo

                backend = load_nemo(Path(name), device=resolve_device(options.device))
            else:
                backend = FasterWhisperBackend(
                    resolve_asr_model(name, allow_download=allow_download), options)
            _loaded[key] = backend
        return backend
