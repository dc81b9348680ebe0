"""Versions of the libraries and CUDA a run used, recorded in run.json (compared by `tunelab diff`).

The whole training environment; data/cache.py keys the tokenization cache on only the three
libraries tokenization depends on, so that list stays separate.
"""

from __future__ import annotations

import platform
from importlib import metadata

LIBRARIES = ("torch", "transformers", "datasets", "accelerate", "peft", "trl", "tokenizers", "numpy")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        import torch

        out["cuda"] = torch.version.cuda  # None on CPU builds
    except ImportError:  # pragma: no cover - torch is a hard dependency
        out["cuda"] = None
    return out
