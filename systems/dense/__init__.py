"""dense family."""
