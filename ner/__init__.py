"""Medical entity recognition (see issue: medical NER)."""
