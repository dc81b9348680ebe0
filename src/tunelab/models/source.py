"""Where `model.name_or_path` points, decided before any loader runs.

transformers resolves a name it cannot find locally as a Hub id and, without a network, retries
each file with backoff: a typo in a local path (`models/my-bert`) or a Hub id on an offline machine
took about a minute to fail and never said "no such local directory". Here one cheap look settles
it: a local directory, a Hub id already in the local cache, or one Hub request with a short
timeout; anything else is a ModelError at once, saying whether the path exists locally.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from tunelab.errors import ModelError

PROBE_TIMEOUT_S = 5.0


def hub_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now (huggingface_hub reads them once, at import)."""
    from huggingface_hub import constants

    truthy = {"1", "true", "yes", "on"}
    env = any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return env or bool(constants.HF_HUB_OFFLINE)


def looks_local(source: str) -> bool:
    """A hub id is "name" or "org/name"; a path prefix, deeper nesting or an existing path is local."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or Path(source).expanduser().exists()


def check_model_source(source: str, revision: str | None = None) -> None:
    """Return when `source` can be loaded from here; else a ModelError that says why, at once."""
    path = Path(source).expanduser()
    if path.exists():
        return
    where = f"no local directory {str(path.absolute())!r}"
    if looks_local(source):
        raise ModelError(
            f"model.name_or_path={source!r}: {where}",
            hint="check the path (relative paths start from the current directory); a Hub id has the form org/name",
        )
    _check_hub_id(source, revision, where)


@functools.lru_cache(maxsize=32)
def _check_hub_id(source: str, revision: str | None, where: str) -> None:
    if _in_cache(source, revision):
        return
    local_hint = f"point model.name_or_path at a local model directory (e.g. ./{source} after saving it there)"
    if hub_offline():
        raise ModelError(
            f"model.name_or_path={source!r}: {where}, and Hub id {source!r} is not in the Hugging Face cache "
            "(offline: HF_HUB_OFFLINE=1)",
            hint=f"{local_hint}, or download it once where the Hub is reachable (huggingface-cli download {source})",
        )
    problem = _probe(source, revision)
    if problem == "missing":
        raise ModelError(
            f"model.name_or_path={source!r}: {where}, and no model {source!r} on the Hugging Face Hub",
            hint=f"check the spelling, or {local_hint}",
        )
    if problem:
        raise ModelError(
            f"model.name_or_path={source!r}: {where}, and the Hugging Face Hub is unreachable ({problem})",
            hint=f"{local_hint}; offline machines: set HF_HUB_OFFLINE=1 so nothing waits on the network",
        )


def _in_cache(source: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(source, "config.json", revision=revision)
    except Exception:  # an id the cache cannot even name (bad characters): the loader will say so
        return False
    return isinstance(found, str)


def _probe(source: str, revision: str | None) -> str | None:
    """None when the Hub answers for `source` (or refuses for another reason: the loader reports
    that); "missing" when it says there is no such model; else the network error, briefly."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, RepositoryNotFoundError

    try:
        HfApi().model_info(source, revision=revision, timeout=PROBE_TIMEOUT_S)
    except (RepositoryNotFoundError, HFValidationError):
        return "missing"
    except HfHubHTTPError:
        return None  # gated, private (a token may be needed), rate-limited: not ours to judge
    except Exception as exc:  # connection refused, DNS, timeout, proxy: httpx/OSError family
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__
    return None
