"""`tunelab train`, `prepare`, `doctor`, `predict` and `evaluate`: the floor that composes a task with data, models and training (docs/architecture.md)."""
