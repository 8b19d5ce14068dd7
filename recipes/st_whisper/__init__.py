"""The st_whisper recipe (see its README.md)."""
