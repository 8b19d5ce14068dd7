"""The roles recipe: speaker-role classifier (see its README.md)."""
