"""device_map placement with an offload folder inside the run dir, and the printed memory plan."""

from __future__ import annotations

import pytest

from gen_support import make_config
from tiny import tiny_model_dir
from tunelab.errors import DeviceError


def test_offload_goes_into_the_run_dir_and_the_plan_is_reported(tmp_path, capsys):
    from tunelab.models.placement import OFFLOAD_DIR
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.base import task_from_config

    model_dir = tiny_model_dir(tmp_path, "llama", head="causal")
    # 60 KB of "CPU" for a ~250 KB model: part stays in memory, the rest is offloaded to disk.
    cfg = make_config(
        tmp_path,
        model_dir,
        {"type": "summarization"},
        tmp_path / "x.csv",
        model={"device_map": "auto", "max_memory": {"cpu": "60KB"}},
    )
    plan, tok, task = decide_plan(cfg), load_tokenizer(cfg), task_from_config(cfg)
    run_dir = tmp_path / "run"
    model = task.build_model(cfg, plan, tok, run_dir=run_dir)
    assert (run_dir / OFFLOAD_DIR).is_dir()
    mem = task.memory_plan
    assert "disk" in mem and sum(v["bytes"] for v in mem.values()) > 0
    assert set(mem) == {str(d) for d in model.hf_device_map.values()}
    assert "model placement" in capsys.readouterr().err
    # the offloaded model still runs
    import torch

    out = model(input_ids=torch.tensor([[1, 2, 3]]))
    assert out.logits.shape[-1] == model.config.vocab_size


def test_max_memory_without_device_map_is_refused(tmp_path):
    from tunelab.models.placement import placement_kwargs

    cfg = make_config(
        tmp_path, tmp_path, {"type": "summarization"}, tmp_path / "x.csv", model={"max_memory": {"cpu": "1GB"}}
    )
    with pytest.raises(DeviceError, match="device_map"):
        placement_kwargs(cfg, tmp_path)


def test_placement_kwargs_map_gpu_indices(tmp_path):
    from tunelab.models.placement import placement_kwargs

    cfg = make_config(
        tmp_path,
        tmp_path,
        {"type": "summarization"},
        tmp_path / "x.csv",
        model={"device_map": "auto", "max_memory": {"0": "20GiB", "cpu": "60GiB"}},
    )
    kw = placement_kwargs(cfg, tmp_path / "run")
    assert kw["max_memory"] == {0: "20GiB", "cpu": "60GiB"}
    assert kw["offload_folder"] == str(tmp_path / "run" / "offload")
