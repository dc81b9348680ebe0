"""tunelab.integrations.kedro without a Kedro project: parameters checked by the config schema,
frames staged once by content, and the pipeline's wiring."""

from __future__ import annotations

import pandas as pd
import pytest

from tunelab.errors import ConfigError
from tunelab.integrations import kedro as tk

PARAMS = {
    "name": "k",
    "task": {"type": "classification"},
    "model": {"name_or_path": "some/model"},
    "data": {"validation_split": 0.25},
}


def test_parameters_use_the_config_schema_with_did_you_mean(tmp_path):
    cfg = tk.config_from_params({**PARAMS, "output_dir": str(tmp_path)}, train_file="t.parquet")
    assert cfg.data.train_file == "t.parquet" and cfg.data.validation_split == 0.25
    with pytest.raises(ConfigError) as info:
        tk.config_from_params({**PARAMS, "trainig": {}})
    assert info.value.message == "params:tunelab: trainig: unknown key; did you mean training?"
    with pytest.raises(ConfigError, match=r"data.train_file: set by the Kedro catalog"):
        tk.config_from_params({**PARAMS, "data": {"train_file": "x.csv"}})
    with pytest.raises(ConfigError, match="expected a mapping"):
        tk.config_from_params(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_frames_are_staged_once_by_content(tmp_path):
    cfg = tk.config_from_params({**PARAMS, "output_dir": str(tmp_path)})
    frame = pd.DataFrame({"id": [1, 2], "text": ["a", "b"], "label": ["x", "y"]})
    first = tk.stage_frame(frame, cfg, "train")
    assert tk.stage_frame(frame.copy(), cfg, "train") == first  # same rows, same file
    assert tk.stage_frame(frame.iloc[::-1], cfg, "train") != first  # order is content (ids, splits)
    assert pd.read_parquet(first).equals(frame)
    with pytest.raises(ConfigError, match="expected a DataFrame"):
        tk.stage_frame({"text": ["a"]}, cfg, "train")  # type: ignore[arg-type]


def test_create_pipeline_wires_the_stages_and_refuses_unknown_names():
    pytest.importorskip("kedro")
    pipe = tk.create_pipeline(data="intents", test="intents_test")
    names = [n.name for n in pipe.nodes]
    assert names == [
        "tunelab_split",
        "tunelab_tokenize",
        "tunelab_doctor",
        "tunelab_train",
        "tunelab_evaluate",
        "tunelab_predict",
    ]
    assert pipe.inputs() == {"intents", "intents_test", "params:tunelab"}
    assert {"tunelab_run_dir", "tunelab_metrics", "tunelab_predictions"} <= pipe.all_outputs()
    lean = tk.create_pipeline(test=None, doctor=False)
    assert [n.name for n in lean.nodes] == ["tunelab_split", "tunelab_tokenize", "tunelab_train"]
    with pytest.raises(ConfigError, match="did you mean run_dir"):
        tk.create_pipeline(rundir="x")
