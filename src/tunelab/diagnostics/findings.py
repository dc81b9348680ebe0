"""The one result type of every diagnostic: a Finding (id, severity, title, evidence, fix).

Checks are pure functions returning `list[Finding]`; doctor, `tunelab train`'s preflight and the
live monitors all speak this type, so preflight.json, health.json and the terminal table share
one shape. Ids are stable (`area.check`, documented in docs/doctor.md): tests and users match on
them, never on titles.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass
class Finding:
    id: str  # stable, "area.check", e.g. "loss.initial"
    severity: Severity
    title: str  # one line: what is wrong (or what was measured)
    evidence: dict[str, Any] = field(default_factory=dict)  # the numbers behind it
    fix: str = ""  # a concrete change, e.g. "set model.head_init_std: 0.02"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        self.evidence = {k: _plain(v) for k, v in self.evidence.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            id=data["id"],
            severity=data["severity"],
            title=data["title"],
            evidence=dict(data.get("evidence") or {}),
            fix=data.get("fix", ""),
        )


def error(id: str, title: str, fix: str = "", **evidence: Any) -> Finding:
    return Finding(id, "error", title, evidence, fix)


def warning(id: str, title: str, fix: str = "", **evidence: Any) -> Finding:
    return Finding(id, "warning", title, evidence, fix)


def info(id: str, title: str, fix: str = "", **evidence: Any) -> Finding:
    return Finding(id, "info", title, evidence, fix)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; stable within a severity (check order)."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: rank[f.severity])


def findings_to_json(findings: list[Finding]) -> dict[str, Any]:
    return {
        "ok": not has_errors(findings),
        "counts": {s: sum(f.severity == s for f in findings) for s in SEVERITIES},
        "findings": [f.to_dict() for f in findings],
    }


def write_findings(path: str | Path, findings: list[Finding], extra: dict[str, Any] | None = None) -> Path:
    """Write findings atomically (preflight.json, health.json)."""
    from tunelab.io import atomic_write_json

    return atomic_write_json(path, {**findings_to_json(findings), **(extra or {})})


def format_evidence(evidence: dict[str, Any], max_items: int = 8) -> str:
    """`k=v` pairs for one table cell; floats in 4 significant digits."""
    parts = []
    for key, value in list(evidence.items())[:max_items]:
        parts.append(f"{key}={_fmt(value)}")
    if len(evidence) > max_items:
        parts.append(f"(+{len(evidence) - max_items} more)")
    return ", ".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value[:6]) + (", ..." if len(value) > 6 else "") + "]"
    return str(value)


def _plain(value: Any) -> Any:
    """Evidence must be JSON numbers/strings: unwrap numpy/torch scalars, round long floats."""
    for attr in ("item", "tolist"):
        fn = getattr(value, attr, None)
        if callable(fn) and not isinstance(value, (list, tuple, dict, str)):
            try:
                value = fn()
                break
            except (TypeError, ValueError, RuntimeError):
                pass
    if isinstance(value, float):
        # NaN/Inf are not JSON: keep them readable as strings ("nan", "inf").
        return float(f"{value:.6g}") if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
