"""Shared fixtures: offline, isolated HF/MLflow homes, tiny models and tokenizers."""

from __future__ import annotations

import os

import pytest

# huggingface_hub reads HF_HUB_OFFLINE once, at import: set it before any test module imports it
# (the per-test monkeypatch below comes too late for that constant, and a Hub id would then wait
# on network timeouts before failing).
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_var] = "1"


@pytest.fixture(autouse=True)
def _offline_isolated(tmp_path, monkeypatch):
    # No test may reach the Hub or write outside tmp.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("WANDB_DISABLED", "true")
    yield


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        # The marker itself, not `item.keywords`: keywords hold every parent node's name too, so a
        # checkout in a directory called "gpu" would skip the whole suite.
        if item.get_closest_marker("gpu") is not None and not has_cuda:
            item.add_marker(skip_gpu)
