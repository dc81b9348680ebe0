"""`tunelab serve RUN_DIR`: settings, API key, uvicorn, and an exit code of 0 after SIGTERM.

Settings come from the run's `serve:` section (with `--set` overrides), then CLI flags. Nothing
heavy happens before the checks: a bad run directory, model directory, setting or API-key
variable is one error line and a non-zero exit, before a port is opened.

Graceful shutdown is uvicorn's: on SIGTERM it stops accepting connections, lets in-flight
requests finish (up to `serve.shutdown_timeout_s`), then runs the app's shutdown (the batcher
drains). uvicorn then re-raises the signal so the default handler would kill the process with
status -15; we install a SIGTERM handler first, so the re-raised signal lands there and the
command exits 0 (what process managers expect after a requested stop).

With `serve.workers > 1`, uvicorn's process supervisor runs that many workers on one socket, each
building the app from `app_from_env` (a copy of the model per worker).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tunelab.config.schema import ServeConfig

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SPEC_ENV = "TUNELAB_SERVE_SPEC"  # how `workers > 1` hands the run to each worker process


def resolve_settings(base: ServeConfig, flags: dict[str, Any]) -> ServeConfig:
    """The run's `serve:` section with the CLI flags that were given (None = not given) on top."""
    from tunelab.config.schema import ServeConfig

    given = {k: v for k, v in flags.items() if v is not None}
    try:
        return ServeConfig.model_validate({**base.model_dump(), **given})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        flag = f"--{key.replace('_', '-')}" if key in given else f"serve.{key}"
        raise ConfigError(f"{flag}: {first['msg']}", hint="`tunelab schema` lists the serve: keys") from None


def api_key(settings: ServeConfig) -> str | None:
    """The key's value from the variable `serve.api_key_env` names; None when no key is configured."""
    name = settings.api_key_env
    if name is None:
        return None
    if not ENV_NAME.match(name):
        # Never echo the value: it is most likely the key itself, pasted in the wrong place.
        raise ConfigError(
            "serve.api_key_env must be the NAME of an environment variable (the value given is not a name and is not shown)",
            hint="export TUNELAB_API_KEY=... and pass --api-key-env TUNELAB_API_KEY",
        )
    value = os.environ.get(name, "")
    if not value.strip():
        raise ConfigError(
            f"serve.api_key_env: environment variable {name} is not set",
            hint=f"export {name}=<key> (or leave api_key_env out for a server without a key)",
        )
    return value.strip()


def require_stack() -> None:
    """The serving stack is an extra: say how to get it instead of an ImportError traceback."""
    import importlib.util

    from tunelab.errors import TunelabError

    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        raise TunelabError(
            f"tunelab serve needs {', '.join(missing)} (not installed)", hint='pip install "tunelab[serve]"'
        )


def build_app(
    run_dir: Path, overrides: list[str], model_dir: Path | None, settings: ServeConfig, *, warm_up: bool = True
) -> FastAPI:
    """The app for a run, checked up front; the model itself loads when the app starts."""
    from tunelab.pipeline.predict import resolve_model_dir, run_config
    from tunelab.serve.app import create_app
    from tunelab.serve.engine import Engine

    run, _ = run_config(run_dir, overrides)
    resolve_model_dir(run.path, model_dir)
    key = api_key(settings)
    return create_app(lambda: Engine.load(run_dir, overrides, model_dir), settings, key, warm_up=warm_up)


def serve_command(
    run_dir: Path, overrides: list[str], model_dir: Path | None = None, flags: dict[str, Any] | None = None
) -> None:
    """Serve until SIGTERM/SIGINT; returns normally after a graceful stop."""
    require_stack()
    import uvicorn

    from tunelab import ui
    from tunelab.pipeline.predict import run_config

    run, cfg = run_config(run_dir, overrides)
    run_dir = run.path  # latest:NAME resolved once: every worker serves the same run
    settings = resolve_settings(cfg.serve, flags or {})
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "timeout_graceful_shutdown": int(max(1, settings.shutdown_timeout_s)),
        "log_level": "info",
    }
    ui.info(
        f"serving {run_dir} ({cfg.task.type}) on http://{settings.host}:{settings.port}  "
        f"POST /v1/predict · GET /ready · /docs" + ("  (API key required)" if settings.api_key_env else "")
    )
    if settings.workers > 1:
        build_app(run_dir, overrides, model_dir, settings, warm_up=False)  # the checks, in this process
        os.environ[SPEC_ENV] = json.dumps(
            {
                "run_dir": str(run_dir),
                "overrides": overrides,
                "model_dir": str(model_dir) if model_dir else None,
                "settings": settings.model_dump(mode="json"),
            }
        )
        uvicorn.run("tunelab.serve.server:app_from_env", factory=True, workers=settings.workers, **common)
        return
    app = build_app(run_dir, overrides, model_dir, settings)
    server = uvicorn.Server(uvicorn.Config(app, **common))
    with _sigterm_returns():
        server.run()


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes (`serve.workers > 1`)."""
    from tunelab.config.schema import ServeConfig

    spec = json.loads(os.environ[SPEC_ENV])
    model_dir = Path(spec["model_dir"]) if spec["model_dir"] else None
    settings = ServeConfig.model_validate(spec["settings"])
    return build_app(Path(spec["run_dir"]), spec["overrides"], model_dir, settings)


@contextlib.contextmanager
def _sigterm_returns() -> Iterator[None]:
    """Catch the SIGTERM uvicorn re-raises after its graceful shutdown, so the process exits 0."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; uvicorn installs none there either
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda sig, frame: received.append(sig))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
