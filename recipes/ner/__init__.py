"""The ner recipe (see its README.md)."""
