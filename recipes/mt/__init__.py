"""The mt recipe (see its README.md)."""
