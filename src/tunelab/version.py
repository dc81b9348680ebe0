"""The package version, on the ground floor: run files and checkpoints record it without importing
the public API in `tunelab/__init__.py` (which sits on the top floor)."""

__version__ = "0.1.0"
