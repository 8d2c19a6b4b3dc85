"""txtheory: reference implementation of Wang & E (NeurIPS 2024)."""
__version__ = "0.1.0"
