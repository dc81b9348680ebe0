"""Loading the best checkpoint at the end of training, reported in our words.

With `load_best_model_at_end` the Trainer reloads the best checkpoint and warns "There were missing
keys in the checkpoint model loaded: [...]" whenever weights are absent from it. For tied weights
(BART's encoder/decoder embeddings and lm_head are one tensor, saved once) that is expected and
harmless, but the line reads like a broken best model. The Trainer has no option for it, so this
mixin replaces its report: tied weights are re-tied silently; anything really missing or
unexpected becomes one warning line of ours.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def tied_elsewhere(model: Any, missing: list[str]) -> set[str]:
    """The missing keys whose tensor is shared with a weight that was loaded (tied weights)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    owners: dict[int, set[str]] = defaultdict(set)
    for name, p in params.items():
        owners[p.data_ptr()].add(name)
    absent = set(missing)
    return {k for k in missing if k in params and owners[params[k].data_ptr()] - absent}


class BestLoadReportMixin:
    """Mixed in before a HF trainer class: `_issue_warnings_after_load` in our words."""

    model: Any

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        from tunelab import ui

        missing = list(load_result.missing_keys)
        tied = tied_elsewhere(self.model, missing)
        if tied:
            self.model.tie_weights()
        really = [k for k in missing if k not in tied]
        if really:
            ui.warn(f"best checkpoint: {len(really)} weight(s) missing, kept from the last step: {_few(really)}")
        if load_result.unexpected_keys:
            ui.warn(f"best checkpoint: weights the model does not use: {_few(list(load_result.unexpected_keys))}")


def _few(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


_CLASSES: dict[type, type] = {}


def best_load_class(base: type) -> type:
    """`base` with the best-checkpoint report above (idempotent, one class per base)."""
    if issubclass(base, BestLoadReportMixin):
        return base
    if base not in _CLASSES:
        _CLASSES[base] = type(base.__name__, (BestLoadReportMixin, base), {"__module__": base.__module__})
    return _CLASSES[base]
