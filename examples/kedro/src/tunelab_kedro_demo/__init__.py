"""tunelab's Kedro nodes fine-tuning the demo model (all-MiniLM-L6-v2) on the demo intents."""

__version__ = "0.1.0"
