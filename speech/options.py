"""Options for loading a recogniser and for one transcription call."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from speech.types import Task

Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class ModelOptions:
    """How to load a model. ``compute_type="auto"`` means int8 on CPU and float16 on CUDA."""

    device: Device = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    """Threads per transcription on CPU; 0 shares the cores among ``workers``."""
    device_index: int = 0
    workers: int = 1
    """Transcriptions that may run at once (one per Python thread), sharing the weights."""

    def __post_init__(self) -> None:
        if self.workers < 1 or self.cpu_threads < 0:
            raise ValueError("workers must be at least 1 and cpu_threads at least 0")


@dataclass(frozen=True)
class TranscribeOptions:
    """Settings of one transcription. Every field that can change the text is recorded in outputs.

    ``batch_size`` 1 decodes the recording sequentially, each 30 s window conditioned on the
    text before it. ``batch_size`` > 1 decodes VAD-cut chunks in batches: about twice as fast on
    CPU, but 2-4 WER points worse on the OSCE interviews (see README, "Speed and accuracy").
    """

    language: str | None = None
    """ISO 639-1 code, or None to identify the language from the first 30 s of speech."""
    languages: tuple[str, ...] = field(default=())
    """With ``language`` None: the languages of a bilingual recording (an interpreted
    consultation). Each speech run the VAD finds is identified among them
    (:func:`speech.identify.pick_language`) and decoded in its own language, instead of the
    whole recording in the language of its first 30 s."""
    task: Task = "transcribe"
    beam_size: int = 5
    batch_size: int = 1
    word_timestamps: bool = True
    vad_filter: bool = True
    vad_min_silence_ms: int = 500
    chunk_seconds: float = 20.0
    """Longest chunk batched decoding cuts (seconds, at most 30); see ``speech.chunking``."""
    vocabulary: tuple[str, ...] = field(default=())
    """Medical terms to bias recognition towards (sent to Whisper as hotwords)."""
    initial_prompt: str | None = None
    condition_on_previous_text: bool = True
    """Only used by sequential decoding (batch_size 1)."""

    def __post_init__(self) -> None:
        if self.task not in ("transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', not {self.task!r}")
        if self.beam_size < 1 or self.batch_size < 1:
            raise ValueError("beam_size and batch_size must be at least 1")
        if not 1.0 <= self.chunk_seconds <= 30.0:
            raise ValueError("chunk_seconds must be between 1 and 30 (Whisper's window)")
        if self.languages and (self.language is not None or len(set(self.languages)) < 2):
            raise ValueError("languages names two or more languages of a recording whose "
                             "language is not given")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["vocabulary"] = list(self.vocabulary)
        if self.languages:
            data["languages"] = list(self.languages)
        else:
            del data["languages"]  # transcripts made before it existed keep their settings
        return data
