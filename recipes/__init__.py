"""Training recipes: one folder each, run as scripts (see recipes/README.md)."""
