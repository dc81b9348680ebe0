# Two commands on a fresh machine: `make demo` and `make test`.
# GPU users: make demo TORCH=torch==2.13.0 TORCH_INDEX=--extra-index-url=https://download.pytorch.org/whl/cu128
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo lint test test-fast bench gpu-check gpu-check-dry examples docs clean

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch on the same pip line as everything else, pinned: an unpinned torch pulls a CUDA build.
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH_INDEX) "$(TORCH)" -r requirements.txt -e ".[test,demo,kedro,docs]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) scripts/demo.py

# The floors of docs/architecture.md (import-linter contracts in pyproject.toml), lint, format.
lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks

test: lint
	bash scripts/test-setup.sh
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider --timeout=900 tests

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests

# The API reference from the docstrings (pdoc) into docs/api/; tests/test_api_docs.py builds it in CI too.
docs: $(STAMP)
	$(PY) scripts/build_api_docs.py docs/api

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# One GPU slot: CUDA extras, `pytest -m gpu`, the Qwen3-4B-shaped bench (rows into docs/benchmarks.md).
# Build the venv with a CUDA torch first (see the top of this file). `make gpu-check-dry` runs the same
# code path on CPU with tiny shapes (`make gpu-check --dry-run` would be make's own dry-run flag).
gpu-check: $(STAMP)
	PYTHON=$(PY) bash scripts/gpu-check.sh

gpu-check-dry: $(STAMP)
	PYTHON=$(PY) bash scripts/gpu-check.sh --dry-run

# Data and tiny random-init models for the example configs (summarization, sft, experiment).
examples: $(STAMP)
	$(PY) scripts/make_demo_data.py
	$(PY) scripts/make_dialogue_data.py
	$(PY) scripts/make_tiny_models.py

clean:
	rm -rf runs mlruns mlflow.db .tunelab_cache examples/data/generated docs/api examples/kedro/data examples/kedro/mlruns
