"""Machine translation with terminology constraints (see issue: terminology-constrained MT)."""
