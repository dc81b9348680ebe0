"""Nothing configurable is silently ignored: every key of the config schema is read somewhere.

For each key `section.key` of the pydantic schema, the source under src/tunelab must read it (a
field's own definition is an annotated name, not an attribute read, so it does not count; the
schema's derived properties, such as a task's input columns, do): as an attribute `.key` right after its section
(`.lora.r`, `training.seed`), as an attribute in a module that names the section, or as a string
(`getattr(cfg.training, name) for name in PASSTHROUGH`). A new key that no code reads fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pydantic import BaseModel

import tunelab
from tunelab.config import schema

SRC = Path(tunelab.__file__).parent
# Keys read through a mechanism the AST scan cannot see. Each entry says which and why.
# Empty today: keep it so, or justify every entry.
ALLOWED_UNREAD: dict[str, str] = {}


def _keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted path, parent section name, key) for every leaf and section of the schema."""
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        parent = prefix.rstrip(".").rsplit(".", 1)[-1] if prefix else ""
        out.append((path, parent, name))
        for sub in _models_in(field.annotation):
            out += _keys(sub, f"{path}.")
    return out


def _models_in(annotation) -> list[type[BaseModel]]:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def _scan() -> tuple[set[str], dict[Path, tuple[set[str], set[str]]], set[str]]:
    """(attribute chains 'a.b', attributes per file, string constants) over the source."""
    chains: set[str] = set()
    per_file: dict[Path, tuple[set[str], set[str]]] = {}
    strings: set[str] = set()
    for path in SRC.rglob("*.py"):
        attrs: set[str] = set()  # attribute names only: `.key`
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                attrs.add(node.attr)
                if isinstance(node.value, ast.Attribute):
                    chains.add(f"{node.value.attr}.{node.attr}")
                elif isinstance(node.value, ast.Name):
                    chains.add(f"{node.value.id}.{node.attr}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings.add(node.value)
        # The file's words too: a module that names the section (`inference.generation` in its
        # docstring) and reads `.key` off a local variable (`settings.length_penalty`) counts.
        per_file[path] = (attrs, set(re.findall(r"[A-Za-z_]+", path.read_text(encoding="utf-8"))))
    return chains, per_file, strings


def _is_read(parent: str, key: str, chains, per_file, strings) -> bool:
    if f"{parent}.{key}" in chains or (not parent and f"cfg.{key}" in chains):
        return True
    if key in strings:
        return True
    return any(key in attrs and (parent in words or not parent) for attrs, words in per_file.values())


def test_every_config_key_is_read_by_some_code():
    chains, per_file, strings = _scan()
    keys = _keys(schema.Config)
    for task_model in (schema.ClassificationTask, schema.SummarizationTask, schema.SFTTask):
        keys += _keys(task_model, "task.")
    unread = sorted(
        {path for path, parent, key in keys if not _is_read(parent, key, chains, per_file, strings)}
        - set(ALLOWED_UNREAD)
    )
    assert not unread, f"config keys no code reads (wire them in, or refuse them with a hint): {unread}"


def test_the_scan_finds_an_unread_key():
    """The check itself can fail: a key that exists nowhere in the source is reported."""
    chains, per_file, strings = _scan()
    assert not _is_read("lora", "definitely_not_a_tunelab_key", chains, per_file, strings)
    assert _is_read("lora", "r", chains, per_file, strings)
