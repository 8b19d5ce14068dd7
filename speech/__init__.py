"""Speech: audio decoding, the model catalog, ASR backends and the types they produce."""

from speech.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, load_audio, probe_duration
from speech.backends import ASRBackend
from speech.catalog import PACKAGED_MODELS, ResolvedModel, resolve_asr_model
from speech.errors import (
    AudioDecodeError,
    InvalidOptionError,
    MedstreamError,
    ModelIntegrityError,
    ModelNotFoundError,
    VocabularyError,
)
from speech.loader import load_asr
from speech.options import ModelOptions, TranscribeOptions
from speech.types import Segment, TranscriptionInfo, Word
from speech.vocabulary import load_vocabulary

__all__ = [
    "AUDIO_EXTENSIONS",
    "PACKAGED_MODELS",
    "SAMPLE_RATE",
    "ASRBackend",
    "AudioDecodeError",
    "InvalidOptionError",
    "MedstreamError",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "ModelOptions",
    "ResolvedModel",
    "Segment",
    "TranscribeOptions",
    "TranscriptionInfo",
    "VocabularyError",
    "Word",
    "load_asr",
    "load_audio",
    "load_vocabulary",
    "probe_duration",
    "resolve_asr_model",
]
