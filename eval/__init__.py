"""Evaluation: text normalisation and metrics shared by tests, benchmarks and reports."""
