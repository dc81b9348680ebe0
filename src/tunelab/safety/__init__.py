"""Reliability and security helpers shared by every command: secret redaction, disk checks, locks.

Kept free of torch/transformers imports so any module (CLI, loggers, trackers) can use them cheaply.
"""

from tunelab.safety.disk import enospc_guard, ensure_free_space, human_bytes
from tunelab.safety.locks import run_lock
from tunelab.safety.secrets import RedactingFilter, install_log_redaction, redact, redact_obj, secret_values

__all__ = [
    "RedactingFilter",
    "enospc_guard",
    "ensure_free_space",
    "human_bytes",
    "install_log_redaction",
    "redact",
    "redact_obj",
    "run_lock",
    "secret_values",
]
