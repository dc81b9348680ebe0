"""Typed config: schema, YAML loading, overrides, did-you-mean."""

from tunelab.config.loader import apply_override, dump_config, flatten, json_schema, load_config, validate_config
from tunelab.config.schema import (
    ClassificationTask,
    Config,
    DataConfig,
    ModelConfig,
    SFTTask,
    SummarizationTask,
    TrainingConfig,
)

__all__ = [
    "ClassificationTask",
    "Config",
    "DataConfig",
    "ModelConfig",
    "SFTTask",
    "SummarizationTask",
    "TrainingConfig",
    "apply_override",
    "dump_config",
    "flatten",
    "json_schema",
    "load_config",
    "validate_config",
]
