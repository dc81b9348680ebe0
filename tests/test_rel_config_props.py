"""Guarantee 5: property-based tests (hypothesis) for the config loader and the data readers.

Whatever bytes, YAML structure or `--set` text a user gives, the loader either returns a Config or
raises ConfigError with a one-line message: never another exception, never a multi-line message.
Valid overrides round-trip: `--set k=v` yields v, and the saved (dumped) config reloads equal.
Likewise any bytes under a data suffix are read + validated or refused with one DataError line.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunelab.config.loader import apply_override, dump_config, load_config, parse_yaml, validate_config
from tunelab.config.schema import Config
from tunelab.errors import ConfigError

BASE = {"task": {"type": "classification"}, "data": {"train_file": "train.csv"}, "model": {"name_or_path": "m"}}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Real key names make mutations land inside the schema (wrong types, misplaced sections), not only
# on unknown top-level keys.
KEYS = sorted(
    {
        *Config.model_fields,
        "type",
        "train_file",
        "learning_rate",
        "per_device_train_batch_size",
        "name_or_path",
        "lora",
        "kfold",
        "k",
        "fold",
        "uri",
        "backend",
        "max_length",
        "labels",
        "x",
    }
)


def _outcome(fn, *args):
    """Run the loader; return the Config, or the ConfigError after checking it is one clean line."""
    try:
        return fn(*args)
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message, repr(exc.message)
        assert exc.hint is None or "\n" not in exc.hint
        return exc


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_loads_or_fails_with_config_error(text):
    _outcome(lambda t: validate_config(parse_yaml(t)), text)


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_on_disk_load_or_fail_with_config_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.yaml"
        path.write_bytes(data)
        _outcome(load_config, path)


@st.composite
def mutated_configs(draw):
    cfg = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 3))):
        node = cfg
        for _depth in range(draw(st.integers(0, 2))):
            key = draw(st.sampled_from(KEYS))
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[draw(st.sampled_from(KEYS) | st.text(max_size=8))] = draw(yaml_values)
    return cfg


@SETTINGS
@given(mutated_configs())
def test_mutated_structures_load_or_fail_with_config_error(raw):
    text = yaml.safe_dump(raw, allow_unicode=True)
    _outcome(lambda t: validate_config(parse_yaml(t)), text)


@SETTINGS
@given(st.lists(st.text(max_size=40), max_size=3))
def test_any_override_text_applies_or_fails_with_config_error(overrides):
    def load(items):
        raw = json.loads(json.dumps(BASE))
        for item in items:
            apply_override(raw, item)
        return validate_config(raw)

    _outcome(load, overrides)


finite_positive = st.floats(min_value=1e-12, max_value=1e6, allow_nan=False, allow_infinity=False)
OVERRIDES = {
    "training.learning_rate": finite_positive,
    "training.per_device_train_batch_size": st.integers(1, 10**6),
    "training.seed": st.integers(-(2**31), 2**31),
    "training.num_train_epochs": finite_positive,
    "training.warmup_steps": st.floats(0, 0.999) | st.integers(1, 10**6).map(float),
    "data.max_length": st.integers(1, 10**6),
    "data.validation_split": st.floats(0.001, 0.999),
    # YAML cannot hold control characters; an unparseable --set value is taken verbatim instead.
    "model.name_or_path": st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=30),
    "model.trust_remote_code": st.booleans(),
    "name": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True),
}


@SETTINGS
@given(st.sampled_from(sorted(OVERRIDES)).flatmap(lambda k: st.tuples(st.just(k), OVERRIDES[k])))
def test_valid_overrides_round_trip(item):
    key, value = item
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.yaml"
        path.write_text(yaml.safe_dump(BASE))
        # How a user types it on a shell; JSON is YAML and quotes strings that look like numbers.
        cfg = load_config(path, [f"{key}={json.dumps(value, ensure_ascii=False)}"])
    got = cfg
    for part in key.split("."):
        got = getattr(got, part)
    assert got == value or (isinstance(value, float) and math.isclose(got, value, rel_tol=1e-12))
    assert validate_config(parse_yaml(dump_config(cfg))) == cfg  # what the run directory saves reloads equal


# ------------------------------------------------------------------ data readers + validation
# Guarantee 5 asks the same of the data readers: any bytes under any data suffix are read and
# validated, or refused with one DataError line (test_data_readers.py proves valid text round-trips).
_CSV_ALPHABET = st.sampled_from(list('ab,"\t\r\n\\{}[]:  é한\ufeff\x00') + ["id", "text", "label", "null", "NaN"])
_data_text = st.lists(_CSV_ALPHABET, max_size=60).map("".join)


@SETTINGS
@given(
    st.sampled_from(["csv", "tsv", "jsonl", "parquet"]),
    st.one_of(
        st.binary(max_size=200),
        _data_text.map(lambda t: t.encode("utf-8")),
        _data_text.map(lambda t: ("id,text,label\n" + t).encode("utf-8")),
        st.sampled_from(["cp949", "cp1252", "utf-16"]).flatmap(
            lambda enc: _data_text.map(lambda t: ("id,text,label\n1," + t + ",a\n").encode(enc, "replace"))
        ),
    ),
)
def test_any_data_file_reads_or_fails_with_one_data_error(fmt, data):
    from tunelab.config.schema import ClassificationTask
    from tunelab.data.readers import read_table
    from tunelab.data.roles import roles_for
    from tunelab.data.validate import validate_frame
    from tunelab.errors import DataError

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{fmt}"
        path.write_bytes(data)
        try:
            frame = read_table(path)
            validate_frame(frame, path, roles_for(ClassificationTask(), "train"))
        except DataError as exc:
            assert exc.message.startswith(str(path)) and "\n" not in exc.message, repr(exc.message)
