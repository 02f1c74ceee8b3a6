"""Tiny random checkpoints for the tests: the same builders `System.tiny` uses (systems/tiny.py)."""

from systems.tiny import SPECIALS, TINY, sentence_transformer, xlmr_tokenizer  # noqa: F401
