"""Sections of an experiment's report: comparison, failures with causes, k-fold, ensemble, TTA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.experiments.summary import summary_rows
from tunelab.reporting import charts
from tunelab.reporting.doc import Pre, Section, Table, Text, image, number
from tunelab.run_summary import collect_run, read_json


def overview_section(exp_dir: Path, experiment: dict[str, Any], rows: list[dict[str, Any]]) -> Section:
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] == "failed"]
    sec = Section("Overview")
    sec.add(Text(f"{len(ok)} of {len(rows)} runs succeeded, {len(failed)} failed.", "bad" if failed else "good"))
    kfold = experiment.get("kfold")
    sec.add(
        Table(
            ["key", "value"],
            [
                ["experiment", experiment.get("name")],
                ["task", experiment.get("task")],
                ["spec", experiment.get("spec")],
                ["variants", ", ".join(v["name"] for v in experiment.get("variants", []))],
                ["k-fold", f"k={kfold['k']}, seed={kfold['seed']}" if kfold else "no"],
                ["--set overrides", ", ".join(experiment.get("overrides") or []) or "-"],
                ["updated (UTC)", experiment.get("updated_utc")],
            ],
        )
    )
    return sec


def comparison_section(exp_dir: Path, rows: list[dict[str, Any]]) -> Section:
    sec = Section("Comparison across runs")
    primary = next((r.get("primary_metric") for r in rows if r.get("primary_metric")), "primary metric")
    table = [
        [
            r["run"],
            r.get("model"),
            r["status"],
            r.get("parameters"),
            r.get("trainable"),
            r.get("primary"),
            r.get("train_time_s"),
            r.get("samples_per_s"),
            r.get("peak_memory_mb"),
        ]
        for r in rows
    ]
    tones = ["bad" if r["status"] == "failed" else None for r in rows]
    sec.add(
        Table(
            [
                "run",
                "model",
                "status",
                "parameters",
                "trainable",
                primary,
                "train time (s)",
                "samples/s",
                "peak memory (MB)",
            ],
            table,
            row_tones=tones,
        )
    )
    ok = [r for r in rows if r["status"] == "ok" and isinstance(r.get("primary"), (int, float))]
    if ok:
        best = max(range(len(ok)), key=lambda i: ok[i]["primary"])
        sec.add(
            image(
                "compare_primary",
                f"{primary} per run (red: best)",
                charts.bars([r["run"] for r in ok], [r["primary"] for r in ok], primary, primary, highlight=best),
            )
        )
    speed = [r for r in rows if isinstance(r.get("samples_per_s"), (int, float))]
    if speed:
        sec.add(
            image(
                "compare_speed",
                "Training throughput per run",
                charts.bars([r["run"] for r in speed], [r["samples_per_s"] for r in speed], "samples/s", "samples/s"),
            )
        )
    histories = {}
    for r in rows:
        run_dir = exp_dir / "runs" / r["run"]
        if r["status"] == "ok" and run_dir.is_dir():
            for h in collect_run(run_dir).history:
                if isinstance(h.get("loss"), (int, float)):
                    histories.setdefault(f"{r['run']}", []).append(h)
    if histories:
        merged = [
            {"step": h.get("step", i), name: h["loss"]} for name, hs in histories.items() for i, h in enumerate(hs)
        ]
        sec.add(
            image(
                "compare_loss", "Training loss per run", charts.curves(merged, list(histories), "training loss", "loss")
            )
        )
    return sec


def failures_section(experiment: dict[str, Any]) -> Section:
    sec = Section("Failures and their causes")
    failed = [r for r in experiment["runs"].values() if r.get("status") == "failed"]
    if not failed:
        sec.add(Text("No run failed.", "good"))
        return sec
    rows = []
    for r in sorted(failed, key=lambda r: r["name"]):
        err, f = r.get("error") or {}, r.get("doctor_finding") or {}
        rows.append(
            [
                r["name"],
                err.get("class"),
                err.get("message"),
                err.get("hint"),
                f"{f.get('id')}: {f.get('title', '')} -> {f.get('fix', '')}" if f else "-",
                r.get("log"),
            ]
        )
    sec.add(Table(["run", "error", "message", "hint", "doctor finding", "log"], rows, row_tones=["bad"] * len(rows)))
    for r in failed:
        if r.get("log_tail"):
            sec.add(Pre(r["log_tail"], f"{r['name']}: last lines of {r.get('log')}"))
    return sec


def kfold_section(experiment: dict[str, Any]) -> Section:
    sec = Section("k-fold")
    res = experiment.get("kfold_results") or {}
    rows = []
    for variant, r in res.items():
        scores = r.get("oof_scores") or {}
        rows.append(
            [
                variant,
                r.get("status"),
                r.get("folds_ok"),
                r.get("oof_rows"),
                ", ".join(f"{k}={number(v)}" for k, v in scores.items() if isinstance(v, float)),
                r.get("test_file"),
            ]
        )
    if rows:
        sec.add(
            Text("Out-of-fold (OOF) scores: every training row predicted once, by the fold that did not train on it.")
        )
        sec.add(
            Table(["variant", "status", "folds ok", "OOF rows", "OOF scores", "test predictions (fold mean)"], rows)
        )
    return sec


def ensemble_section(exp_dir: Path) -> Section:
    sec = Section("Ensemble")
    ens = read_json(exp_dir / "ensemble.json")
    if not isinstance(ens, dict):
        sec.add(Text("No ensemble yet: run `tunelab ensemble " + str(exp_dir) + "`."))
        return sec
    sec.add(Text(ens["verdict"], "good" if ens.get("gain", 0) > 0 else "bad"))
    primary = ens["primary_metric"]
    names, values, rows = [], [], []
    for name, s in sorted(ens["single"].items(), key=lambda kv: -kv[1][primary]):
        names.append(f"single: {name}")
        values.append(s[primary])
        rows.append([f"single: {name}", s[primary], ""])
    for name, r in ens["methods"].items():
        names.append(f"ensemble: {name}")
        values.append(r["scores"][primary])
        rows.append(
            [
                f"ensemble: {name}" + (" (chosen)" if name == ens["chosen"] else ""),
                r["scores"][primary],
                ", ".join(f"{k}={v}" for k, v in (r.get("weights") or {}).items()),
            ]
        )
    sec.add(
        Table(
            ["model / method", primary, "weights"],
            rows,
            caption=f"{ens['validation_rows']} validation rows; {ens.get('note', '')}",
        )
    )
    sec.add(
        image(
            "ensemble",
            f"Ensemble vs single models ({primary})",
            charts.bars(names, values, primary, primary, highlight=names.index(f"ensemble: {ens['chosen']}")),
        )
    )
    if ens.get("submission"):
        sec.add(Text(f"Submission file: {ens['submission']}"))
    return sec


def tta_section(experiment: dict[str, Any]) -> Section:
    sec = Section("Test-time augmentation")
    tta = experiment.get("tta") or {}
    rows = []
    for run, r in sorted(tta.items()):
        if "verdict" in r:
            rows.append([run, r.get("without"), r.get("with"), r.get("gain"), r["verdict"]])
        else:
            rows.append([run, None, None, None, f"not measured: {r.get('error', '?')}"])
    if rows:
        sec.add(Table(["run", "without TTA", "with TTA", "gain", "verdict"], rows))
    return sec


def experiment_rows(exp_dir: Path, experiment: dict[str, Any]) -> list[dict[str, Any]]:
    return summary_rows(exp_dir, experiment)
