"""Corpora and token arrays."""
