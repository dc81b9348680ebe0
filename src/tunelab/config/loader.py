"""YAML loading, `--set a.b=c` overrides and human error messages for the config.

pydantic's errors are precise but not friendly; `_format_error` turns the first one into a single
line with the full key path, the offending value, the expected type and, for unknown keys, the
closest valid key.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tunelab.config.schema import Config
from tunelab.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # a config is a page of YAML, not a data file
MAX_DEPTH = 12
MAX_NODES = 20_000  # guards against alias ("billion laughs") expansion


def load_config(path: str | os.PathLike[str], overrides: list[str] | None = None) -> Config:
    """Read, override and validate a config file. Raises ConfigError with one clear line."""
    raw = read_yaml(path)
    for item in overrides or []:
        apply_override(raw, item)
    return validate_config(raw, source=str(path))


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found", hint="pass the path of a YAML config")
    size = p.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{p}: config is {size} bytes, over the {MAX_CONFIG_BYTES} limit", hint="is this a data file?"
        )
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})", hint="save the config as UTF-8") from None
    return parse_yaml(text, source=str(p))


def parse_yaml(text: str, source: str = "<config>") -> dict[str, Any]:
    try:
        # compose first so alias bombs and deep nesting are caught before expansion
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_node(node, source)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}", hint="check indentation and quoting") from None
    except RecursionError:
        # PyYAML's composer recurses per nesting level: thousands of `[` overflow the stack before
        # _check_node can count them (tests/bad_inputs/configs/very_deep_nesting.yaml).
        raise ConfigError(
            f"{source}: YAML nested deeper than {MAX_DEPTH} levels", hint="a config is a few levels deep"
        ) from None
    if data is None:
        raise ConfigError(f"{source}: config is empty", hint="see `tunelab schema` or examples/")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}", hint="see examples/")
    return data


def _check_node(node: yaml.Node | None, source: str) -> None:
    # Iterative walk counting nodes *with* alias re-visits, so expansion size is bounded.
    if node is None:
        return
    stack: list[tuple[yaml.Node, int]] = [(node, 1)]
    seen = 0
    while stack:
        cur, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"{source}: YAML nested deeper than {MAX_DEPTH} levels", hint="a config is a few levels deep"
            )
        if seen > MAX_NODES:
            raise ConfigError(
                f"{source}: YAML expands to more than {MAX_NODES} nodes (alias bomb?)", hint="remove anchors/aliases"
            )
        if isinstance(cur, yaml.MappingNode):
            for k, v in cur.value:
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(cur, yaml.SequenceNode):
            stack.extend((v, depth + 1) for v in cur.value)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply `a.b.c=value` in place; the value is parsed as a YAML scalar/flow value."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE", hint="e.g. --set training.learning_rate=1e-4")
    key, _, value_text = item.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {item!r}: empty key", hint="e.g. --set training.learning_rate=1e-4")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError:
        value = value_text
    set_dotted(raw, ".".join(parts), value, what=f"--set {item!r}")


def set_dotted(raw: dict[str, Any], key: str, value: Any, what: str | None = None) -> None:
    """Set `a.b.c` in a raw config mapping in place, creating sections on the way."""
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            path = ".".join(parts[: i + 1])
            raise ConfigError(
                f"{what or 'override ' + key}: {path} is a value, not a section", hint=f"set {path}=... directly"
            )
        node = nxt
    node[parts[-1]] = value


def validate_config(raw: dict[str, Any], source: str = "<config>") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_format_error(exc, raw)}", hint=_hint_for(exc)) from None


def _format_error(exc: ValidationError, raw: dict[str, Any]) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    # Discriminated unions put the tag in the path ("task.classification.x"): drop it.
    task_type = raw.get("task", {}).get("type") if isinstance(raw.get("task"), dict) else None
    if len(loc) >= 2 and loc[0] == "task" and loc[1] == task_type:
        loc = [loc[0], *loc[2:]]
    path = ".".join(_show_key(p) for p in loc)
    etype = err["type"]
    if etype == "extra_forbidden":
        suggestion = did_you_mean(loc, raw)
        tail = f"; did you mean {suggestion}?" if suggestion else ""
        return f"{path}: unknown key{tail}"
    if etype == "missing":
        return f"{path}: required key is missing"
    if etype == "union_tag_invalid" or etype == "union_tag_not_found":
        return f"{path or 'task'}.type: must be one of classification, summarization, sft (got {err.get('input', {}).get('type') if isinstance(err.get('input'), dict) else err.get('input')!r})"
    value = err.get("input")
    if etype == "value_error" and isinstance(value, dict):
        # A check across a whole section: its message names the keys; echoing the section adds noise.
        return f"{path}: {err['msg'].removeprefix('Value error, ')}"
    return f"{path}: {err['msg']} (got {value!r})"


def _show_key(part: str) -> str:
    # A key holding a line break or control character would split the one-line message: quote it.
    return part if part and part.isprintable() and part.strip() == part else repr(part)


def _hint_for(exc: ValidationError) -> str:
    etype = exc.errors()[0]["type"]
    if etype == "extra_forbidden":
        return "`tunelab schema` lists every key"
    if etype == "missing":
        return "see examples/ for a complete config"
    return "fix the value, or override it with --set KEY=VALUE"


def did_you_mean(loc: list[str], raw: dict[str, Any]) -> str | None:
    """Closest valid key at the same level, as a full dotted path."""
    model: type[BaseModel] | None = Config
    for part in loc[:-1]:
        model = _field_model(model, part, raw, loc)
        if model is None:
            return None
    valid = list(model.model_fields)  # type: ignore[union-attr]
    match = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.6)
    if not match:
        return None
    return ".".join([*loc[:-1], match[0]])


def _field_model(
    model: type[BaseModel] | None, name: str, raw: dict[str, Any], loc: list[str]
) -> type[BaseModel] | None:
    from tunelab.config import schema

    if model is None or name not in model.model_fields:
        return None
    if model is Config and name == "task":
        kind = (
            raw.get("task", {}).get("type", "classification") if isinstance(raw.get("task"), dict) else "classification"
        )
        return {
            "classification": schema.ClassificationTask,
            "summarization": schema.SummarizationTask,
            "sft": schema.SFTTask,
        }.get(kind)
    ann = model.model_fields[name].annotation
    for cand in getattr(ann, "__args__", (ann,)):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return cand
    return None


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML (what is saved in the run directory)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; used for MLflow params."""
    out: dict[str, Any] = {}
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = obj
    return out


def json_schema() -> dict[str, Any]:
    return Config.model_json_schema()
