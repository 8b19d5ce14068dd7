"""CUDA checks: run on a machine with an NVIDIA GPU (skipped elsewhere, with the reason)."""

from __future__ import annotations

import ctranslate2
import pytest

from eval.wer import error_rate
from speech.audio import load_audio
from speech.loader import load_asr
from speech.options import ModelOptions, TranscribeOptions
from tests.conftest import read_manifest

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(ctranslate2.get_cuda_device_count() == 0,
                       reason="no CUDA device visible to CTranslate2"),
]


@pytest.mark.parametrize("batch_size", [1, 8])
def test_cuda_float16_agrees_with_the_cpu(batch_size: int) -> None:
    row = read_manifest("jfk_inaugural")[0]
    audio = load_audio(row["path"])
    options = TranscribeOptions(language="en", batch_size=batch_size)
    texts = []
    for device in ("cuda", "cpu"):
        model = load_asr("base", ModelOptions(device=device, compute_type="auto"))
        assert model.compute_type == ("float16" if device == "cuda" else "int8")
        segments, _ = model.transcribe(audio, options)
        texts.append(" ".join(s.text for s in segments))
    gpu_text, cpu_text = texts
    assert error_rate([row["text"]], [gpu_text]).score <= 5.0
    assert error_rate([cpu_text], [gpu_text]).score <= 10.0
