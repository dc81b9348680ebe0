"""The FastAPI app: routes, errors as JSON naming the field, API key, metrics, model lifecycle.

The model loads in a background thread when the app starts, so `GET /health` (the process is
alive) answers at once while `GET /ready` (the model can answer) turns 200 only once the model is
loaded and warmed up, and back to 503 while the server drains on shutdown. A load balancer or
Kubernetes probe uses the two the usual way.

Endpoints: POST /v1/predict, GET /v1/metadata, GET /metrics (API key when one is configured),
GET /health, GET /ready, and the framework's /docs and /openapi.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tunelab.serve.batching import Batcher, BatchFailed, BatchStats, QueueFull, ShuttingDown
from tunelab.serve.inputs import PredictRequest, ServeError, check_inputs, check_parameters
from tunelab.serve.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:
    from tunelab.config.schema import ServeConfig
    from tunelab.serve.engine import Engine

log = logging.getLogger("tunelab.serve")


class ServeState:
    """What the routes share: the engine once loaded, its batcher, and the lifecycle phase."""

    def __init__(self, settings: ServeConfig):
        self.settings = settings
        self.engine: Engine | None = None
        self.batcher: Batcher | None = None
        self.error: str | None = None
        self.draining = False
        self.metrics = Metrics(lambda: self.batcher.depth if self.batcher else 0)

    @property
    def phase(self) -> str:
        if self.error:
            return "failed"
        if self.draining:
            return "draining"
        return "ready" if self.batcher is not None else "loading"

    def load(self, load_engine: Callable[[], Engine], warm_up: bool) -> None:
        """Runs on a background thread: load, warm up, then start taking batches."""
        try:
            engine = load_engine()
            if warm_up:
                engine.warm_up()
        except Exception as exc:  # the process stays up: /health says why, so a supervisor restarts it
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", self.error)
            return
        s = self.settings
        batcher = Batcher(
            engine.predict_rows,
            max_batch_size=s.max_batch_size,
            max_wait_ms=s.max_wait_ms,
            max_queue=s.max_queue,
            stats=BatchStats(on_batch=self.metrics.on_batch),
        )
        batcher.start()
        self.engine = engine
        self.batcher = batcher

    def ready(self) -> tuple[Engine, Batcher]:
        if self.engine is None or self.batcher is None or self.draining:
            raise ServeError(
                503, "server", f"not ready ({self.phase})", kind="unavailable", headers={"Retry-After": "1"}
            )
        return self.engine, self.batcher


def create_app(
    load_engine: Callable[[], Engine], settings: ServeConfig, api_key: str | None, *, warm_up: bool = True
) -> FastAPI:
    """The app for one run. `api_key`: the key's value (read from `serve.api_key_env`), None for no auth."""
    state = ServeState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=state.load, args=(load_engine, warm_up), name="tunelab-model-load", daemon=True).start()
        yield
        # uvicorn calls this after in-flight requests finished (or its graceful timeout passed).
        state.draining = True
        if state.batcher is not None:
            await asyncio.to_thread(state.batcher.close, settings.shutdown_timeout_s)

    app = FastAPI(
        title="tunelab serve",
        summary="A fine-tuned tunelab run behind HTTP, with dynamic batching.",
        lifespan=lifespan,
    )
    app.state.serve = state
    _install_errors(app, state)
    _install_metrics(app, state)
    guard = Depends(_auth(api_key))
    _install_probes(app, state, guard)
    _install_predict(app, state, guard)
    return app


def _install_probes(app: FastAPI, state: ServeState, guard: Any) -> None:
    @app.get("/health")
    def health() -> JSONResponse:
        """Liveness: the process answers (500 when the model failed to load)."""
        if state.error:
            return JSONResponse({"status": "failed", "error": state.error}, status_code=500)
        return JSONResponse({"status": "ok"})

    @app.get("/ready")
    def ready() -> JSONResponse:
        """Readiness: 200 once the model is loaded and warmed up; 503 while loading or draining."""
        phase = state.phase
        return JSONResponse({"status": phase}, status_code=200 if phase == "ready" else 503)

    @app.get("/v1/metadata", dependencies=[guard])
    def metadata() -> dict[str, Any]:
        """Run id, model, task, labels, max_length, generation settings, limits, versions."""
        engine, _ = state.ready()
        limits = state.settings.model_dump(
            include={
                "max_batch_size",
                "max_wait_ms",
                "max_queue",
                "max_texts_per_request",
                "max_chars_per_text",
                "max_new_tokens_limit",
                "max_num_beams",
            }
        )
        return {**engine.metadata(), "limits": limits}

    @app.get("/metrics", dependencies=[guard])
    def metrics() -> Response:
        """Prometheus text format: requests, latency histogram, batch sizes, queue depth."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)


def _install_predict(app: FastAPI, state: ServeState, guard: Any) -> None:
    settings = state.settings

    @app.post("/v1/predict", dependencies=[guard, Depends(_body_limit(settings))])
    async def predict(body: PredictRequest) -> JSONResponse:
        """Predictions for `inputs`, in input order."""
        engine, batcher = state.ready()
        rows = check_inputs(body.inputs, engine, settings)
        params, key = check_parameters(body.parameters, engine, settings)
        try:
            future = batcher.submit(rows, params, key)
        except QueueFull as exc:
            state.metrics.rejected.labels(reason="queue_full").inc()
            raise ServeError(
                503,
                "server",
                f"queue full ({settings.max_queue} texts waiting)",
                hint="retry after the Retry-After seconds",
                kind="overloaded",
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        except ShuttingDown:
            raise ServeError(503, "server", "shutting down", kind="unavailable") from None
        try:
            predictions = await asyncio.wrap_future(future)
        except BatchFailed as exc:
            raise ServeError(500, "model", f"the model failed on this batch ({exc})", kind="model_error") from None
        # Serialised here: FastAPI's generic encoder walks the nested answer recursively, which
        # costs more per request than the model for short texts on a CPU.
        return JSONResponse({"predictions": predictions})


def _auth(api_key: str | None) -> Callable[[Request], None]:
    expected = api_key.encode() if api_key else None

    def check(request: Request) -> None:
        if expected is None:
            return
        supplied = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if supplied is None and authorization[:7].lower() == "bearer ":
            supplied = authorization[7:].strip()
        # compare_digest: the time taken does not tell how much of a guess was right.
        if not supplied or not hmac.compare_digest(supplied.encode(), expected):
            raise ServeError(
                401,
                "authorization",
                "missing or wrong API key",
                hint="send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                kind="unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def _body_limit(settings: ServeConfig) -> Callable[[Request], None]:
    # The per-text limits bound a valid body; refuse anything far larger before parsing it.
    limit = settings.max_texts_per_request * (settings.max_chars_per_text * 4 + 256) + 65_536

    def check(request: Request) -> None:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise ServeError(413, "body", f"{int(length)} bytes, at most {limit}", hint="send fewer or shorter texts")

    return check


def _install_errors(app: FastAPI, state: ServeState) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid", "type": ""}
        content_type = request.headers.get("content-type", "")
        if first.get("type") == "json_invalid":
            err = ServeError(400, "body", "malformed JSON", hint='send a JSON object like {"inputs": ["text"]}')
        elif content_type and "json" not in content_type.lower():
            # FastAPI parses the body as JSON only when it is declared as JSON (or undeclared).
            err = ServeError(
                415,
                "content-type",
                f"{content_type.split(';')[0]} is not JSON",
                hint="send Content-Type: application/json",
            )
        else:
            err = ServeError(422, _field(first.get("loc", ())), str(first.get("msg", "invalid")))
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        err = ServeError(exc.status_code, "path", str(exc.detail), kind="http_error")
        return JSONResponse(err.body(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        err = ServeError(500, "server", f"internal error ({type(exc).__name__})", kind="internal_error")
        return JSONResponse(err.body(), status_code=500)


class _ObserveRequests:
    """Pure ASGI middleware: status and latency per route (cheaper than an `@app.middleware`)."""

    def __init__(self, app: Any, state: ServeState):
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_observed(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            # The route template, never the raw path: unknown paths must not create new series.
            endpoint = getattr(scope.get("route"), "path", "other")
            self.state.metrics.observe_request(endpoint, status, time.perf_counter() - start)


def _install_metrics(app: FastAPI, state: ServeState) -> None:
    app.add_middleware(_ObserveRequests, state=state)


def _field(loc: Any) -> str:
    """("body", "inputs", 3) -> "inputs[3]"; the body itself -> "body"."""
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"
