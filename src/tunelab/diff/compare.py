"""One comparison: load both sides, rank speed and result explanations, list the differences."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.diff.facts import Difference, differences
from tunelab.diff.results import Explanation, compare_results
from tunelab.diff.sides import Side, load_side
from tunelab.diff.speed import Factor, SpeedReport, compare_speed

SCHEMA = "tunelab.diff/1"  # bump when a documented --json field changes meaning or goes away


@dataclass
class DiffResult:
    a: Side
    b: Side
    speed: SpeedReport
    metric: dict[str, Any] | None
    explanations: list[Explanation]
    differences: list[Difference] = field(default_factory=list)

    def shown(self, show_all: bool = False) -> list[Difference]:
        return [d for d in self.differences if show_all or not d.noise]

    def headline(self) -> list[str]:
        """The ranked story in a few sentences."""
        lines = []
        sp = self.speed
        if sp.ratio and sp.ratio < 1.05:
            lines.append(f"no speed difference {'measured' if sp.basis == 'measured' else 'expected'} (within 5%)")
        elif sp.ratio and sp.slower:
            faster = "B" if sp.slower == "A" else "A"
            verb = "differ" if sp.basis == "measured" else "are estimated to differ"
            parts = [f"A and B {verb} {sp.ratio:.1f}x in samples/s ({faster} faster)"]
            parts += [f"{f.title} explains ~{f.factor:.2f}x{_evidence(f)}" for f in sp.factors[:4]]
            if sp.unexplained is not None:
                parts.append(f"unexplained ~{sp.unexplained:.2f}x")
            lines.append("; ".join(parts))
        if self.metric:
            m = self.metric
            lines.append(f"{m['metric']} {m['a']:.4f} vs {m['b']:.4f} ({m['delta']:+.4f})")
        for e in self.explanations[:3]:
            if e.weight >= 2:
                lines.append(f"{e.title}: {e.why}")
        return lines

    def to_json(self, show_all: bool = False) -> dict[str, Any]:
        def side(s: Side) -> dict[str, Any]:
            return {"path": str(s.path), "kind": s.kind, "name": s.config.get("name"), "notes": s.notes}

        shown = self.shown(show_all)
        return {
            "schema": SCHEMA,
            "a": side(self.a),
            "b": side(self.b),
            "headline": self.headline(),
            "speed": self.speed.to_dict(),
            "results": {"metric": self.metric, "explanations": [e.to_dict() for e in self.explanations]},
            "differences": [d.to_dict() for d in shown],
            "hidden_differences": len(self.differences) - len(shown),
        }


def _evidence(f: Factor) -> str:
    """The measured facts behind a factor, for the one-line story."""
    a, b = f.a if isinstance(f.a, dict) else {}, f.b if isinstance(f.b, dict) else {}
    if f.key == "batching" and "padding_efficiency" in a and "padding_efficiency" in b:
        return f" (padding efficiency {a['padding_efficiency']:.2f} vs {b['padding_efficiency']:.2f})"
    if f.key == "data_wait" and "data_wait_share" in a and "data_wait_share" in b:
        return f" (data wait {100 * a['data_wait_share']:.0f}% vs {100 * b['data_wait_share']:.0f}%)"
    return ""


def compare(a: str | Path, b: str | Path) -> DiffResult:
    side_a, side_b = load_side(a, "A"), load_side(b, "B")
    metric, explanations = compare_results(side_a, side_b)
    return DiffResult(
        a=side_a,
        b=side_b,
        speed=compare_speed(side_a, side_b),
        metric=metric,
        explanations=explanations,
        differences=differences(side_a, side_b),
    )
