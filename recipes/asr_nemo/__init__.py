"""The asr_nemo recipe (see its README.md)."""
