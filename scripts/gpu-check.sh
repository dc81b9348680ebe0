#!/usr/bin/env bash
# One GPU slot, one command: CUDA extras, `pytest -m gpu`, then the Qwen3-4B-shaped bench whose rows
# (samples/s, tokens/s, MFU, peak memory, device stamp) replace the GPU section of docs/benchmarks.md.
# Budget: under 8 minutes on one H200; each part prints how long it took.
#
#   scripts/gpu-check.sh             # on a GPU machine (or: make gpu-check)
#   scripts/gpu-check.sh --dry-run   # the same code path on CPU with tiny shapes (run by the test suite)
#
# PYTHON picks the interpreter (default: .venv/bin/python, else python3). GPU_CHECK_OUT is where the
# bench writes gpu_check.{json,md} (default runs/gpu-check). PIP_ARGS are passed to pip (e.g.
# "--no-index --find-links /wheels" on a machine without internet).
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    *) echo "usage: scripts/gpu-check.sh [--dry-run]" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT="${GPU_CHECK_OUT:-runs/gpu-check}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
declare -a PARTS=()

part() {  # part NAME COMMAND...: run, time, remember
  local name="$1"; shift
  local t0=$SECONDS
  echo "== $name"
  "$@"
  PARTS+=("$name: $((SECONDS - t0)) s")
  echo "== $name done in $((SECONDS - t0)) s"
}

install_extras() {
  # The CUDA extras of pyproject.toml (gpu, liger, flash), pinned in requirements-gpu.txt, with the
  # installed torch pinned on the same line: otherwise pip may replace the CUDA build of torch.
  local torch_pin major
  torch_pin="torch==$("$PY" -c 'import torch; print(torch.__version__)')"
  major="$("$PY" -c 'import torch; print(torch.cuda.get_device_capability(0)[0])')"
  # shellcheck disable=SC2086
  "$PY" -m pip install -q --disable-pip-version-check ${PIP_ARGS:-} "$torch_pin" \
    $(grep -E '^(bitsandbytes|liger-kernel)==' requirements-gpu.txt) \
    || echo "warning: bitsandbytes/liger-kernel did not install; the tests that need them will fail and say so" >&2
  if [[ "$major" -ge 8 ]]; then
    # flash-attn builds from source when no prebuilt wheel matches: bounded, so the slot is not lost.
    # shellcheck disable=SC2086
    timeout 240 "$PY" -m pip install -q --disable-pip-version-check --no-build-isolation ${PIP_ARGS:-} \
      "$torch_pin" "$(grep -E '^flash-attn==' requirements-gpu.txt)" \
      || echo "warning: flash-attn did not install; the plan uses SDPA and the flash test fails and says so" >&2
  else
    echo "  flash-attn: skipped (sm${major}x < sm80: no kernels; tunelab plans SDPA here)"
  fi
  "$PY" - <<'PY'
import importlib.util as u
for name in ("bitsandbytes", "liger_kernel", "flash_attn"):
    print(f"  {name}: {'installed' if u.find_spec(name) else 'MISSING'}")
PY
}

gpu_tests() {
  if [[ $DRY == 1 ]]; then
    # No CUDA here: collect the gpu tests (they must exist and import), run none.
    "$PY" -m pytest -q -p no:cacheprovider -m gpu --collect-only tests/test_gpu.py
  else
    "$PY" -m pytest -q -p no:cacheprovider -m gpu -x --timeout=600 tests
  fi
}

bench() {
  if [[ $DRY == 1 ]]; then
    "$PY" -m tunelab.bench.gpu_check --dry-run --out "$OUT"
  else
    "$PY" -m tunelab.bench.gpu_check --out "$OUT" --docs docs/benchmarks.md
  fi
}

START=$SECONDS
if [[ $DRY == 0 ]]; then
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device visible: run with --dry-run, or on a GPU machine")'
  part "install CUDA extras" install_extras
fi
part "pytest -m gpu" gpu_tests
part "bench (Qwen3-4B-shaped classifier)" bench
echo "== gpu-check finished in $((SECONDS - START)) s"
printf '   %s\n' "${PARTS[@]}"
