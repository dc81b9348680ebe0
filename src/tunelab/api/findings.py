"""`Findings`: what `tunelab.doctor` returns, a list of checks with the verdict attached."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from tunelab.diagnostics.findings import Finding, findings_to_json, has_errors


class Findings(list[Finding]):
    """The doctor's findings, errors first. A plain `list[Finding]` with the verdict on top.

    Each `Finding` has a stable `id` ("area.check"), a `severity` ("error", "warning", "info"),
    a one-line `title`, the `evidence` (numbers) and a concrete `fix`.
    """

    def __init__(self, findings: Iterable[Finding] = ()) -> None:
        super().__init__(findings)

    @property
    def ok(self) -> bool:
        """True when no finding is an error (training would start)."""
        return not has_errors(self)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self if f.severity == "warning"]

    def by_id(self, finding_id: str) -> Finding | None:
        """The first finding with this id, or None."""
        return next((f for f in self if f.id == finding_id), None)

    def to_json(self) -> dict[str, Any]:
        """The document `tunelab doctor --json` prints: ok, counts per severity, findings."""
        return findings_to_json(list(self))

    def print(self, file: IO[str] | None = None) -> None:
        """The table `tunelab doctor` prints, with its one-line verdict."""
        from tunelab.pipeline.doctor import print_findings

        print_findings(list(self), file=file)

    def __repr__(self) -> str:
        counts = self.to_json()["counts"]
        return f"Findings(ok={self.ok}, errors={counts['error']}, warnings={counts['warning']}, info={counts['info']})"
