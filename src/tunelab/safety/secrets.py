"""Keep credentials out of everything we write: logs, saved configs, MLflow params, reports.

Two sources of secrets are masked: (1) the *values* of environment variables whose names mark
them as credentials (HF_TOKEN, OPENAI_API_KEY, MLFLOW_TRACKING_PASSWORD, AWS_SECRET_ACCESS_KEY...),
and (2) well-known token shapes and URL userinfo (`http://user:pass@host`) wherever they appear,
e.g. a tracking URI typed into the config.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Name parts (split on `_`) that mark an env var as a credential. Matching whole parts keeps
# TOKENIZERS_PARALLELISM (a tokenizers switch) out while HF_TOKEN / *_API_KEY match.
_SECRET_NAME_PARTS = {"KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "AUTH"}
_NOT_SECRET_NAMES = {"PWD", "OLDPWD"}  # the shell's working directory, not a password
# Values shorter than this are too likely to collide with ordinary text ("1", "true") to mask.
_MIN_SECRET_LEN = 6

_TOKEN_PATTERNS = [
    re.compile(r"\bhf_[A-Za-z0-9]{20,}\b"),  # Hugging Face tokens
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}\b"),  # OpenAI-style API keys
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),  # GitHub tokens
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/=\-]{8,}"),  # Authorization: Bearer <token>
]
# scheme://user:password@host -> keep the user (useful when debugging), mask the password.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
# Keys whose string value is a credential, judged on the leaf of a dotted key by whole parts:
# `hf_token`, `access_token`, `api_key`, `password` mask; `pad_token` (a special token's text),
# `api_key_env` (the *name* of a variable), `tokenizer`, `max_tokens` do not.
_SECRET_KEY_PARTS = {"token", "secret", "password", "passwd", "apikey", "credential", "credentials", "auth"}
_API_KEY = re.compile(r"(?i)(^|[_\-])api[_\-]?key($|[_\-])")
_SPECIAL_TOKEN_KEY = re.compile(r"(?i)^(pad|bos|eos|unk|sep|cls|mask|additional_special)_tokens?$")


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    if upper in _NOT_SECRET_NAMES:
        return False
    parts = set(re.split(r"[_\-.]", upper))
    return bool(parts & _SECRET_NAME_PARTS) or upper.endswith(("APIKEY", "_PASSWORD", "TOKEN"))


def is_secret_key(key: str) -> bool:
    """True when a mapping key (or the leaf of a dotted one) names a credential."""
    leaf = key.rsplit(".", 1)[-1]
    if _SPECIAL_TOKEN_KEY.match(leaf) or leaf.lower().endswith(("_env", "_file", "_path")):
        return False
    parts = set(re.split(r"[_\-\s]", leaf.lower()))
    return bool(parts & _SECRET_KEY_PARTS) or bool(_API_KEY.search(leaf))


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of credential-named env vars, longest first (so overlapping values mask fully)."""
    env = os.environ if environ is None else environ
    vals = {v for k, v in env.items() if is_secret_name(k) and v and len(v) >= _MIN_SECRET_LEN}
    return sorted(vals, key=len, reverse=True)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Mask secrets in a string. Cheap enough for every log record."""
    if not text:
        return text
    for value in secret_values(environ):
        if value in text:
            text = text.replace(value, MASK)
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    for pat in _TOKEN_PATTERNS:
        text = pat.sub(MASK, text)
    return text


def redact_obj(obj: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Recursively redact strings in dicts/lists; values under secret-named keys are masked whole."""
    if isinstance(obj, str):
        return redact(obj, environ)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if isinstance(k, str) and is_secret_key(k) and isinstance(v, str) and v:
                out[k] = MASK
            else:
                out[k] = redact_obj(v, environ)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v, environ) for v in obj)
    return obj


def redacted_config_yaml(cfg: Any) -> str:
    """A pydantic config as YAML with every secret masked, still loadable (what run dirs keep)."""
    import yaml

    data = redact_obj(cfg.model_dump(mode="json"))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is the logger's problem, not ours
        return record
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    return record


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Attach RedactingFilter to a logger and all its handlers (idempotent).

    Filters on a logger do not apply to records propagated from child loggers, so the filter is
    added to the handlers too: that is where every record passes before being written.
    """
    target = logger or logging.getLogger()
    for obj in [target, *target.handlers]:
        if not any(isinstance(f, RedactingFilter) for f in obj.filters):
            obj.addFilter(RedactingFilter())


def install_global_log_redaction() -> None:
    """Mask secrets in every log record of every logger, including handlers that libraries add
    later (transformers, mlflow, urllib3): a record factory runs for each record before any
    handler sees it, which a filter on the root logger does not. Called once by the CLI."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_tunelab_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _redact_record(previous(*args, **kwargs))

    factory._tunelab_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
