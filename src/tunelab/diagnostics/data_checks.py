"""Check 11, data: leakage across splits, identical inputs with different labels, mojibake share.

data/ already finds these on the raw text while splitting and records them as warning strings in
the data manifest (`manifest["warnings"]`; mojibake above `data.mojibake_max_share` is a
DataError there). With a manifest we turn its warnings into findings; without one (a caller that
passes only tokenized data) leakage and conflicts are recomputed on the token ids (identical ids
= identical model input).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, info, warning

LEAK_WARN = 0.01  # over 1% of validation rows also in train: the validation score is inflated
CONFLICT_WARN = 0.01


# Prefixes/phrases of data/'s warning strings (partition.leakage, validate.label_warnings,
# validate._check_mojibake) -> our ids.
_MANIFEST_KINDS = (
    ("leakage:", "data.leakage", warning),
    ("carry different labels", "data.conflicting_labels", warning),
    ("mojibake in", "data.mojibake", warning),
)


def check_data(ctx: CheckContext) -> list[Finding]:
    if ctx.manifest is not None and "warnings" in ctx.manifest:
        return manifest_findings(ctx.manifest)
    return leakage(ctx) + conflicts(ctx)


def manifest_findings(manifest: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    for text in manifest.get("warnings") or []:
        for marker, fid, severity in _MANIFEST_KINDS:
            if marker in text:
                ev: dict[str, Any] = {"source": "data manifest"}
                share = re.search(r"\(([0-9.]+)%\)", text)
                if share:
                    ev["share"] = float(share.group(1)) / 100
                count = re.search(r"(\d+) \w+ row\(s\)|(\d+) identical|mojibake in (\d+)", text)
                if count:
                    ev["rows"] = int(next(g for g in count.groups() if g))
                out.append(severity(fid, text[:300], _FIXES[fid], **ev))
                break
    return out


_FIXES = {
    "data.leakage": "deduplicate before splitting (or split by group) so validation measures unseen inputs",
    "data.conflicting_labels": "fix or drop the contradictory rows; they cap accuracy and add noise",
    "data.mojibake": "`tunelab fix-text FILE -o FIXED` writes a repaired copy (or re-export the data as UTF-8)",
}


def _keys(ids: list[Any]) -> list[int]:
    return [hash(tuple(r)) for r in ids]


def leakage(ctx: CheckContext) -> list[Finding]:
    train, val = ctx.column("input_ids"), ctx.column("input_ids", "eval")
    if not train or not val:
        return []
    seen = set(_keys(train))
    leaked = sum(k in seen for k in _keys(val))
    share = leaked / len(val)
    ev = dict(validation_rows=len(val), in_train=leaked, share=round(share, 4))
    if share > LEAK_WARN:
        return [
            warning(
                "data.leakage",
                f"{leaked} validation rows ({share:.1%}) are identical to training rows: "
                "validation scores overstate generalisation",
                "deduplicate before splitting (or split by group)",
                **ev,
            )
        ]
    return [info("data.leakage", f"{leaked} validation rows identical to training rows", **ev)]


def conflicts(ctx: CheckContext) -> list[Finding]:
    if ctx.kind != "classification":
        return []
    ids, labels = ctx.column("input_ids"), ctx.column("labels")
    if not ids or not labels or isinstance(labels[0], (list, tuple)):
        return []
    by_key: dict[int, set[int]] = defaultdict(set)
    for key, label in zip(_keys(ids), labels):
        by_key[key].add(int(label))
    groups = sum(len(v) > 1 for v in by_key.values())
    rows = sum(1 for key in _keys(ids) if len(by_key[key]) > 1)
    share = rows / len(ids)
    ev = dict(conflicting_groups=groups, rows=rows, share=round(share, 4))
    if groups == 0:
        return []
    severity = warning if share > CONFLICT_WARN else info
    return [
        severity(
            "data.conflicting_labels",
            f"{groups} identical inputs carry different labels ({rows} rows, {share:.1%})",
            "fix or drop the contradictory rows; they cap accuracy and add noise",
            **ev,
        )
    ]
