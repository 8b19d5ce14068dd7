"""The asr_whisper recipe (see its README.md)."""
