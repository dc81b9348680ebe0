"""Placing models that do not fit on one device: `device_map`, `max_memory`, offload folder.

accelerate's big-model loading does the placement (`from_pretrained(device_map=...)`); we add
the policy around it: offloaded weights go to `<run_dir>/offload` (inside the run, cleaned
with it, never a shared temp dir), and the resulting plan (which modules went where, bytes per
device) is printed and returned so it can be stored with the run.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import DeviceError

if TYPE_CHECKING:
    from tunelab.config.schema import Config

OFFLOAD_DIR = "offload"


def placement_kwargs(cfg: Config, run_dir: Path | None) -> dict[str, Any]:
    """`from_pretrained` kwargs for `model.device_map` / `model.max_memory` ({} when unset)."""
    if cfg.model.device_map is None:
        if cfg.model.max_memory:
            raise DeviceError("model.max_memory is set but model.device_map is not", hint="set model.device_map: auto")
        return {}
    kw: dict[str, Any] = {"device_map": cfg.model.device_map}
    if cfg.model.max_memory:
        # YAML keys are strings; accelerate wants GPU indices as ints ("0" -> 0), "cpu"/"disk" as is.
        kw["max_memory"] = {int(k) if str(k).isdigit() else k: v for k, v in cfg.model.max_memory.items()}
    if run_dir is not None:
        folder = Path(run_dir) / OFFLOAD_DIR
        folder.mkdir(parents=True, exist_ok=True)
        kw["offload_folder"] = str(folder)
    return kw


def memory_plan(model: Any) -> dict[str, dict[str, Any]]:
    """{device: {"modules": [...], "bytes": n}} from `model.hf_device_map` (empty if not placed)."""
    device_map = getattr(model, "hf_device_map", None)
    if not device_map:
        return {}
    sizes: dict[str, int] = {}
    for name, param in list(model.named_parameters()) + list(model.named_buffers()):
        sizes[name] = param.numel() * param.element_size()
    plan: dict[str, dict[str, Any]] = defaultdict(lambda: {"modules": [], "bytes": 0})
    for module, device in device_map.items():
        key = str(device)
        plan[key]["modules"].append(module or "<whole model>")
        prefix = f"{module}." if module else ""
        plan[key]["bytes"] += sum(n for name, n in sizes.items() if name.startswith(prefix))
    return dict(plan)


def print_memory_plan(plan: dict[str, dict[str, Any]]) -> None:
    from tunelab import ui

    if not plan:
        return
    rows = [
        [
            device,
            str(len(info["modules"])),
            f"{info['bytes'] / 2**20:.1f}",
            ", ".join(info["modules"][:4]) + (" ..." if len(info["modules"]) > 4 else ""),
        ]
        for device, info in plan.items()
    ]
    ui.print_rows("model placement (device_map)", ["device", "modules", "MiB", "first modules"], rows, console=ui.err())
