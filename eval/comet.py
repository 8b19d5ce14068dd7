"""COMET (Rei et al. 2020/2022) when its package and model are on this machine; never downloads.

COMET is source-aware: each reference is a ``(source, reference)`` pair. The model is a
checkpoint file, a model folder (``checkpoints/model.ckpt`` inside), or a Hub id such as
``Unbabel/wmt22-comet-da`` that is already in the local Hugging Face cache together with its
encoder's tokenizer (``xlm-roberta-large`` for that one). Anything missing raises
:class:`~eval.metric.MetricUnavailableError` with what to install or fetch; reports list the
metric as skipped with that message.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.metric import Metric, MetricUnavailableError, Score, check_lengths

DEFAULT_COMET_MODEL = "Unbabel/wmt22-comet-da"
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def comet_checkpoint(model: str) -> Path:
    """The checkpoint file of ``model`` on this machine, or :class:`MetricUnavailableError`."""
    path = Path(model).expanduser()
    candidates = [path, path / "checkpoints" / "model.ckpt"]
    if not path.exists() and _HUB_ID.fullmatch(model):
        from huggingface_hub import snapshot_download
        try:
            folder = Path(snapshot_download(model, local_files_only=True))
        except Exception as error:
            raise MetricUnavailableError(
                f"COMET model {model!r} is not in the local Hugging Face cache ({error}); "
                f"fetch it on a connected machine with `huggingface-cli download {model}` "
                "and copy the cache, or pass --comet-model PATH") from error
        candidates.append(folder / "checkpoints" / "model.ckpt")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise MetricUnavailableError(f"no COMET checkpoint at {model!r} (looked for "
                                 f"{', '.join(str(c) for c in candidates)})")


class Comet(Metric):
    """Corpus COMET (mean of segment scores) × 100."""

    def __init__(self, model: str = DEFAULT_COMET_MODEL, batch_size: int = 16,
                 gpus: int = 0) -> None:
        if importlib.util.find_spec("comet") is None:
            raise MetricUnavailableError(
                "COMET needs the unbabel-comet package: pip install 'medstream[comet]'")
        self.model_name = model
        self.checkpoint = comet_checkpoint(model)
        self.batch_size = batch_size
        self.gpus = gpus
        self.name = "COMET"
        self._model: Any = None

    def signature(self) -> str:
        version = importlib.metadata.version("unbabel-comet")
        return f"comet|model:{self.model_name}|scale:x100|version:{version}"

    def corpus_score(self, hypotheses: Sequence[str],
                     references: Sequence[tuple[str, str]]) -> Score:
        """``references`` are ``(source, reference)`` pairs."""
        check_lengths(hypotheses, references)
        if self._model is None:
            from comet import load_from_checkpoint
            self._model = load_from_checkpoint(str(self.checkpoint))
        data = [{"src": src, "mt": mt, "ref": ref}
                for mt, (src, ref) in zip(hypotheses, references, strict=True)]
        output = self._model.predict(data, batch_size=self.batch_size, gpus=self.gpus,
                                     progress_bar=False)
        return self._score(100 * float(output.system_score),
                           segments=[100 * float(s) for s in output.scores])
