"""One error family for everything a user can get wrong.

The CLI catches `TunelabError` and prints `message` plus `hint` on one line each, then exits
non-zero. Anything that is not a TunelabError is a bug in tunelab and keeps its traceback.
"""

from __future__ import annotations


class TunelabError(Exception):
    """A problem with the user's input or environment, explained in one line plus a hint."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, so logs and tests can match it
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class ConfigError(TunelabError):
    """Bad YAML, unknown key, wrong type, invalid override."""


class DataError(TunelabError):
    """A data file is missing, unreadable or invalid; message names file:row:column."""


class ModelError(TunelabError):
    """A model or tokenizer cannot be loaded or used as configured."""


class RunDirError(TunelabError):
    """A run directory is missing, incomplete, locked or from another tunelab version."""


class DeviceError(TunelabError):
    """The requested feature needs hardware this machine does not have (e.g. QLoRA on CPU)."""


class PreflightError(TunelabError):
    """Doctor found at least one error-severity finding before training."""


class ResourceError(TunelabError):
    """Disk full, out of memory with no smaller plan left, or a lock held by another run."""
