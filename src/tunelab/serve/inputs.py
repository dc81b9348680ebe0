"""What a caller may send to POST /v1/predict, checked before anything reaches the model queue.

pydantic (through FastAPI) checks the envelope: a JSON object with a list `inputs` and an object
`parameters`. The items and parameters are checked here, against the run (its input columns,
labels and generation settings) and the `serve:` limits, so every refusal names the exact field
(`inputs[3].dialogue`, `parameters.num_beams`) and the limit, as one 4xx JSON error.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from tunelab.config.schema import ServeConfig
    from tunelab.serve.engine import Engine


class PredictRequest(BaseModel):
    """Body of POST /v1/predict."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] = Field(
        description="Texts (strings) or objects with the task's input columns, answered in this order.",
        json_schema_extra={"examples": [["where is my parcel?"]]},
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Per-request overrides: classification `top_k`; generation settings "
        "(max_new_tokens, num_beams, do_sample, temperature, ...) within the server's limits.",
    )


class ServeError(Exception):
    """A refusal sent to the caller as `{"error": {"type", "field", "message", "hint"}}`."""

    def __init__(
        self,
        status: int,
        field: str,
        message: str,
        hint: str | None = None,
        kind: str = "invalid_input",
        headers: dict[str, str] | None = None,
    ):
        super().__init__(f"{field}: {message}")
        self.status = status
        self.field = field
        self.message = message
        self.hint = hint
        self.kind = kind
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.kind, "field": self.field, "message": self.message, "hint": self.hint}}


def check_inputs(items: list[Any], engine: Engine, limits: ServeConfig) -> list[dict[str, Any]]:
    """Rows (input columns + optional id) from the request's `inputs`, or a ServeError."""
    if not items:
        raise ServeError(422, "inputs", "empty list", hint='send {"inputs": ["some text"]}')
    if len(items) > limits.max_texts_per_request:
        raise ServeError(
            413,
            "inputs",
            f"{len(items)} texts, at most {limits.max_texts_per_request} per request",
            hint="split the texts over several requests (serve.max_texts_per_request)",
        )
    return [_row(item, i, engine, limits) for i, item in enumerate(items)]


def _row(item: Any, i: int, engine: Engine, limits: ServeConfig) -> dict[str, Any]:
    columns = engine.input_columns
    where = f"inputs[{i}]"
    if isinstance(item, str):
        if len(columns) != 1:
            raise ServeError(
                422,
                where,
                f"a plain string is ambiguous: this run reads {len(columns)} columns",
                hint=f"send an object with {', '.join(columns)}",
            )
        return {columns[0]: _text(item, where, limits)}
    if not isinstance(item, dict):
        raise ServeError(
            422,
            where,
            f"expected a string or an object, got {_json_type(item)}",
            hint=f'e.g. "some text" or {{"{columns[0]}": "some text"}}',
        )
    allowed = set(columns) | ({engine.id_column} if engine.id_column else set())
    for key in item:
        if key not in allowed:
            raise ServeError(
                422, f"{where}.{key}", "unknown field", hint=f"this run reads {', '.join(sorted(allowed))}"
            )
    row: dict[str, Any] = {}
    for col in columns:
        if col not in item:
            raise ServeError(422, f"{where}.{col}", "missing", hint=f"each input needs {', '.join(columns)}")
        row[col] = _text(item[col], f"{where}.{col}", limits)
    if engine.id_column and engine.id_column in item:
        value = item[engine.id_column]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ServeError(
                422, f"{where}.{engine.id_column}", f"expected a string or integer id, got {_json_type(value)}"
            )
        row[engine.id_column] = value
    return row


def _text(value: Any, where: str, limits: ServeConfig) -> str:
    if not isinstance(value, str):
        raise ServeError(422, where, f"expected a string, got {_json_type(value)}")
    if not value.strip():
        raise ServeError(422, where, "empty text", hint="send non-blank text")
    if len(value) > limits.max_chars_per_text:
        raise ServeError(
            413,
            where,
            f"{len(value)} characters, at most {limits.max_chars_per_text}",
            hint="shorten the text (serve.max_chars_per_text); the model reads only data.max_length tokens anyway",
        )
    return value


def check_parameters(params: dict[str, Any], engine: Engine, limits: ServeConfig) -> tuple[dict[str, Any], Hashable]:
    """(validated overrides that differ from the run's settings, a batching key for them).

    Requests with different effective settings never share a batch; overrides equal to the
    run's own settings are dropped, so such requests batch with everyone else.
    """
    if engine.classifier:
        return _classification_parameters(params, engine)
    return _generation_parameters(params, engine, limits)


def _classification_parameters(params: dict[str, Any], engine: Engine) -> tuple[dict[str, Any], Hashable]:
    for key in params:
        if key != "top_k":
            raise ServeError(422, f"parameters.{key}", "unknown parameter", hint="classification takes top_k")
    if "top_k" not in params:
        return {}, ()
    k = params["top_k"]
    n = len(engine.label_names)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ServeError(422, "parameters.top_k", f"must be an integer from 1 to {n} (the number of labels)")
    # top_k only shapes the answer, but the task computes it per batch: one key per value.
    return ({}, ()) if k == engine.cfg.inference.top_k else ({"top_k": k}, (("top_k", k),))


def _generation_parameters(
    params: dict[str, Any], engine: Engine, limits: ServeConfig
) -> tuple[dict[str, Any], Hashable]:
    from tunelab.config.schema import GenerationConfig

    fields = GenerationConfig.model_fields
    for key in params:
        if key not in fields:
            raise ServeError(
                422, f"parameters.{key}", "unknown parameter", hint=f"generation takes {', '.join(sorted(fields))}"
            )
    base = engine.generation.model_dump()
    try:
        merged = GenerationConfig.model_validate({**base, **params})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "parameters"
        raise ServeError(422, f"parameters.{field}", first["msg"]) from None
    if merged.max_new_tokens > limits.max_new_tokens_limit:
        raise ServeError(
            422,
            "parameters.max_new_tokens",
            f"{merged.max_new_tokens} exceeds this server's limit of {limits.max_new_tokens_limit}",
            hint="serve.max_new_tokens_limit",
        )
    if merged.num_beams > limits.max_num_beams:
        raise ServeError(
            422,
            "parameters.num_beams",
            f"{merged.num_beams} exceeds this server's limit of {limits.max_num_beams}",
            hint="serve.max_num_beams",
        )
    effective = {k: v for k, v in merged.model_dump().items() if v != base[k]}
    return effective, tuple(sorted(effective.items()))


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object", str: "a string"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
