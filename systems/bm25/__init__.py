"""bm25 family."""
