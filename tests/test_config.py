"""Config: strict schema, did-you-mean, overrides, YAML safety, schema command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.config import apply_override, load_config, validate_config
from tunelab.config.loader import dump_config, flatten, parse_yaml
from tunelab.errors import ConfigError

BASE = """
name: t
task: {type: classification}
data: {train_file: x.csv}
model: {name_or_path: m}
"""


def write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_minimal_config_gets_defaults(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.task.type == "classification"
    assert cfg.training.learning_rate == 5e-5
    assert cfg.tracking.backend == "mlflow"
    assert cfg.model.trust_remote_code is False


def test_unknown_key_names_full_path_and_suggestion(tmp_path):
    p = write(tmp_path, BASE + "training:\n  learning_rat: 1e-4\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert "training.learning_rat: unknown key; did you mean training.learning_rate?" in msg


def test_unknown_key_inside_task_union_suggests_task_field(tmp_path):
    p = write(tmp_path, BASE.replace("{type: classification}", "{type: classification, text_colum: body}"))
    with pytest.raises(ConfigError, match=r"task.text_colum: unknown key; did you mean task.text_column\?"):
        load_config(p)


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ConfigError, match=r"trainig: unknown key; did you mean training\?"):
        load_config(write(tmp_path, BASE + "trainig: {}\n"))


def test_wrong_type_names_key_value_and_type(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, BASE + "training: {per_device_train_batch_size: many}\n"))
    msg = str(ei.value)
    assert "training.per_device_train_batch_size" in msg and "'many'" in msg and "integer" in msg


def test_missing_required_section(tmp_path):
    with pytest.raises(ConfigError, match="model: required key is missing"):
        load_config(write(tmp_path, "task: {type: classification}\ndata: {train_file: x}\n"))


def test_bad_task_type(tmp_path):
    with pytest.raises(ConfigError, match="task.type: must be one of"):
        load_config(write(tmp_path, BASE.replace("classification", "regression")))


def test_overrides_parse_yaml_scalars(tmp_path):
    cfg = load_config(
        write(tmp_path, BASE),
        ["training.learning_rate=1e-4", "data.max_length=64", "model.lora.enabled=true", "task.labels=[a, b]"],
    )
    assert cfg.training.learning_rate == 1e-4
    assert cfg.data.max_length == 64
    assert cfg.model.lora.enabled is True
    assert cfg.task.labels == ["a", "b"]


def test_override_unknown_key_is_did_you_mean(tmp_path):
    with pytest.raises(ConfigError, match="did you mean training.learning_rate"):
        load_config(write(tmp_path, BASE), ["training.learnin_rate=1"])


def test_override_into_scalar_is_refused():
    raw = {"training": {"seed": 1}}
    with pytest.raises(ConfigError, match="training.seed is a value"):
        apply_override(raw, "training.seed.x=1")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_override(raw, "training.seed")


def test_tracking_none_shorthand(tmp_path):
    assert load_config(write(tmp_path, BASE + "tracking: none\n")).tracking.backend == "none"


def test_warmup_ratio_and_steps(tmp_path):
    assert load_config(write(tmp_path, BASE + "training: {warmup_steps: 0.1}\n")).training.warmup_steps == 0.1
    assert load_config(write(tmp_path, BASE + "training: {warmup_steps: 100}\n")).training.warmup_steps == 100
    with pytest.raises(ConfigError, match="whole number"):
        load_config(write(tmp_path, BASE + "training: {warmup_steps: 2.5}\n"))


def test_yaml_alias_bomb_is_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh")
    )
    with pytest.raises(ConfigError, match="alias bomb|nested deeper"):
        parse_yaml(bomb)


def test_deeply_nested_yaml_is_refused():
    with pytest.raises(ConfigError, match="nested deeper"):
        parse_yaml("a: " + "[" * 50 + "]" * 50)


def test_python_tags_are_not_executed():
    with pytest.raises(ConfigError, match="invalid YAML"):
        parse_yaml("a: !!python/object/apply:os.system ['echo hacked']")


def test_invalid_yaml_points_at_line(tmp_path):
    with pytest.raises(ConfigError, match=r"c.yaml:\d+:\d+: invalid YAML"):
        load_config(write(tmp_path, "task: {type: classification\n  bad: [\n"))


def test_non_mapping_and_empty(tmp_path):
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="config is empty"):
        load_config(write(tmp_path, "\n"))


def test_not_utf8_config(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(p)


def test_dump_roundtrip_and_flatten(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    again = validate_config(parse_yaml(dump_config(cfg)))
    assert again == cfg
    flat = flatten(cfg)
    assert flat["training.learning_rate"] == 5e-5 and flat["task.type"] == "classification"


def test_cli_misspelled_key_exits_nonzero_with_did_you_mean(tmp_path):
    p = write(tmp_path, BASE + "training:\n  learning_rat: 1e-4\n")
    res = CliRunner().invoke(app, ["validate", str(p)])
    assert res.exit_code == 2
    assert "did you mean training.learning_rate?" in res.output
    assert "Traceback" not in res.output


def test_cli_schema_prints_json_schema():
    res = CliRunner().invoke(app, ["schema"])
    assert res.exit_code == 0
    schema = json.loads(res.output)
    assert "task" in schema["properties"] and "training" in schema["properties"]
