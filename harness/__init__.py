"""Benchmark and reproducibility harness for multilingual information retrieval."""

__version__ = "0.1.0"
