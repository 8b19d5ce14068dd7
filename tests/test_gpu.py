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
def test_cuda_float16_matches_the_cpu_transcript(batch_size: int) -> None:
    row = read_manifest("jfk_inaugural")[0]
    audio = load_audio(row["path"])
    options = TranscribeOptions(language="en", batch_size=batch_size)
    gpu = load_asr("base", ModelOptions(device="cuda", compute_type="auto"))
    assert gpu.compute_type == "float16"
    segments, _ = gpu.transcribe(audio, options)
    text = " ".join(s.text for s in segments)
    assert error_rate([row["text"]], [text]).score <= 0.05
