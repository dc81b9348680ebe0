"""tunelab: one YAML file drives a whole fine-tuning job, checked at every step."""

__version__ = "0.1.0"
