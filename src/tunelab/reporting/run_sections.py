"""Sections of a single run's report, built from its run directory."""

from __future__ import annotations

import json
from typing import Any

from tunelab.data.tokenize import LENGTHS_FILE
from tunelab.reporting import charts
from tunelab.reporting.doc import Section, Table, Text, image, number
from tunelab.run_summary import RunSummary, read_json

EXAMPLES = 3


def config_section(run: RunSummary) -> Section:
    cfg = run.config
    tr, data, model = cfg.get("training") or {}, cfg.get("data") or {}, cfg.get("model") or {}
    plan = run.plan
    rows = [
        ["name", run.name],
        ["task", run.task],
        ["model", run.model],
        ["LoRA", run.lora],
        [
            "quantization",
            "4-bit"
            if (model.get("quantization") or {}).get("load_in_4bit")
            else ("8-bit" if (model.get("quantization") or {}).get("load_in_8bit") else "none"),
        ],
        ["precision", plan.get("precision") or (cfg.get("runtime") or {}).get("precision")],
        ["device", plan.get("device")],
        ["learning_rate", tr.get("learning_rate")],
        [
            "batch size x accumulation",
            f"{tr.get('per_device_train_batch_size')} x {tr.get('gradient_accumulation_steps')}",
        ],
        ["epochs / max_steps", f"{tr.get('num_train_epochs')} / {tr.get('max_steps')}"],
        ["max_length / batching", f"{data.get('max_length')} / {data.get('batching')}"],
        ["train file", data.get("train_file")],
        ["k-fold", json.dumps(data.get("kfold")) if data.get("kfold") else "-"],
        ["tunelab version", run.info.get("tunelab_version")],
        ["created (UTC)", run.info.get("created_utc")],
    ]
    sec = Section("Configuration")
    sec.add(Table(["key", "value"], [r for r in rows if r[1] not in (None, "None / None")]))
    return sec


def _find(obj: Any, names: tuple[str, ...]) -> Any:
    """First value under a key containing one of `names`, depth-first (manifests nest by split)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if any(n in str(k).lower() for n in names) and v not in (None, {}, []):
                return v
        for v in obj.values():
            found = _find(v, names)
            if found is not None:
                return found
    return None


def data_section(run: RunSummary) -> Section:
    m = run.manifest
    sec = Section("Data")
    sizes = _find(m, ("split_sizes", "rows", "sizes"))
    if isinstance(sizes, dict):
        sec.add(
            Table(
                ["split", "rows"],
                [[k, v] for k, v in sizes.items() if isinstance(v, (int, float))],
                caption="split sizes",
            )
        )
    counts = _find(m, ("label_counts", "label_distribution", "class_counts"))
    if isinstance(counts, dict) and isinstance(counts.get("train"), dict):  # per split: plot train
        counts = counts["train"]
    if isinstance(counts, dict) and counts and all(isinstance(v, (int, float)) for v in counts.values()):
        items = sorted(counts.items(), key=lambda kv: -kv[1])[:40]
        sec.add(
            image(
                "label_distribution",
                f"Training label distribution ({len(counts)} labels; at most 40 shown)",
                charts.bars([k for k, _ in items], [v for _, v in items], "rows per label", "rows", fmt="{:.0f}"),
            )
        )
    _lengths(run, sec)
    return sec


def _lengths(run: RunSummary, sec: Section) -> None:
    profile = read_json(run.path / LENGTHS_FILE) or {}
    limit = profile.get("max_length") or (run.config.get("data") or {}).get("max_length")
    lengths = (profile.get("lengths") or {}).get("train") or _find(run.manifest, ("token_lengths",))
    if isinstance(lengths, list) and lengths and all(isinstance(x, (int, float)) for x in lengths):
        sec.add(
            image(
                "length_histogram",
                "Training token lengths before truncation (dashed: max_length)",
                charts.histogram(lengths, "token lengths", "tokens", limit),
            )
        )
    stats = profile.get("stats") or _find(run.manifest, ("length_stats",))
    if isinstance(stats, dict) and stats and all(isinstance(v, dict) for v in stats.values()):
        keys = [
            k
            for k in ("rows", "mean", "p50", "p90", "p99", "max", "truncation_rate")
            if any(k in v for v in stats.values())
        ]
        sec.add(
            Table(
                ["split", *keys],
                [[name, *[v.get(k) for k in keys]] for name, v in stats.items()],
                caption=f"token lengths (max_length {limit})",
            )
        )
        stats = stats.get("train", {})
    elif isinstance(stats, dict):
        flat = {k: v for k, v in stats.items() if isinstance(v, (int, float))}
        if flat:
            sec.add(Table(list(flat), [list(flat.values())], caption=f"token lengths (max_length {limit})"))
    trunc = stats.get("truncation_rate") if isinstance(stats, dict) else None
    if trunc is None:
        trunc = _find(run.manifest, ("truncation_rate",))
    if isinstance(trunc, (int, float)):
        sec.add(
            Text(f"Truncated at max_length={limit}: {trunc:.1%} of training rows", "warn" if trunc > 0.05 else None)
        )


def training_section(run: RunSummary) -> Section:
    h = run.history
    sec = Section("Training curves")
    sec.add(image("loss", "Loss", charts.curves(h, ["loss", "eval_loss"], "loss", "loss")))
    metric_keys = sorted(
        {
            k
            for r in h
            for k in r
            if k.startswith("eval_")
            and k not in ("eval_loss",)
            and not any(s in k for s in ("runtime", "per_second", "steps"))
        }
    )
    sec.add(image("eval_metrics", "Validation metrics", charts.curves(h, metric_keys, "validation metrics")))
    sec.add(image("learning_rate", "Learning rate", charts.curves(h, ["learning_rate"], "learning rate")))
    sec.add(image("grad_norm", "Gradient norm", charts.curves(h, ["grad_norm"], "gradient norm")))
    sec.add(
        image(
            "throughput",
            "Throughput",
            charts.two_axis_curves(
                h,
                ["samples_per_s", "samples/s"],
                ["tokens_per_s", "tokens/s"],
                "throughput",
                ("samples/s", "tokens/s"),
            ),
        )
    )
    head = run.headline()
    rows = [[k, v] for k, v in head.items() if v is not None]
    if rows:
        sec.add(Table(["measure", "value"], rows, caption="size and speed"))
    if not h:
        sec.add(Text("No history.jsonl: the run logged no training steps.", "warn"))
    return sec


def metrics_section(run: RunSummary) -> Section:
    sec = Section("Metrics")
    scores = run.scores()
    if scores:
        sec.add(
            Text(
                f"Primary metric {run.primary_metric}: {number(run.primary_value)}"
                if run.primary_value is not None
                else ""
            )
        )
        sec.add(Table(["metric", "value"], [[k, v] for k, v in sorted(scores.items())], caption="validation"))
    per_class = run.metrics.get("per_class") or run.metrics.get("validation_per_class")
    if isinstance(per_class, dict) and per_class:
        rows = [
            [lab, d.get("precision"), d.get("recall"), d.get("f1"), d.get("support")] for lab, d in per_class.items()
        ]
        rows.sort(key=lambda r: r[3] if isinstance(r[3], (int, float)) else 0)
        sec.add(
            Table(["label", "precision", "recall", "f1", "support"], rows[:60], caption="per class (worst F1 first)")
        )
    cm = run.metrics.get("confusion_matrix") or read_json(run.path / "confusion_matrix.json")
    names = run.metrics.get("label_names") or run.manifest.get("label_names") or []
    if isinstance(cm, dict):  # {"labels": [...], "matrix": [...]}
        names, cm = cm.get("labels", names), cm.get("matrix")
    if isinstance(cm, list) and cm and len(names) == len(cm):
        sec.add(image("confusion_matrix", "Confusion matrix", charts.confusion(cm, names)))
    return sec


def examples_section(run: RunSummary) -> Section:
    """Best and worst validation examples by ROUGE (generation tasks)."""
    from tunelab.config.schema import task_section
    from tunelab.experiments.predictions import load_split

    sec = Section("Best and worst examples")
    section = task_section(run.config.get("task") or {"type": run.task})
    if section is None or section.class_column():
        return sec  # answers are classes (sft with a label set too): the confusion matrix tells more
    preds = load_split(run.path, "validation")
    if preds is None or preds.gold is None or not preds:
        return sec
    from tunelab.evaluation.rouge import sample_scores

    rcfg = (run.config.get("evaluation") or {}).get("rouge") or {}
    _, rows = sample_scores(
        [p or "" for p in preds.predictions], preds.gold, rcfg.get("tokenizer", "auto"), rcfg.get("aggregate", "max")
    )
    totals = [sum(r.values()) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: -totals[i])
    for title, idx in (("best", order[:EXAMPLES]), ("worst", order[::-1][:EXAMPLES])):
        table = [[preds.ids[i], round(totals[i], 4), preds.predictions[i], preds.gold[i]] for i in idx]
        sec.add(
            Table(["id", "rouge_sum", "prediction", "reference"], table, caption=f"{title} {len(idx)} by ROUGE sum")
        )
    return sec


def findings_section(run: RunSummary) -> Section:
    sec = Section("Doctor findings")
    if not run.findings:
        sec.add(Text("No preflight findings recorded."))
        return sec
    rows, tones = [], []
    for f in run.findings:
        sev = str(f.get("severity", "")).lower()
        rows.append([sev, f.get("id"), f.get("title") or f.get("message"), _evidence(f.get("evidence")), f.get("fix")])
        tones.append("bad" if sev == "error" else None)
    sec.add(Table(["severity", "id", "finding", "evidence", "fix"], rows, row_tones=tones))
    return sec


def tta_section(run: RunSummary) -> Section:
    sec = Section("Test-time augmentation")
    tta = read_json(run.path / "tta.json")
    if not isinstance(tta, dict) or "verdict" not in tta:
        return sec
    sec.add(Text(tta["verdict"], "good" if tta.get("gain", 0) > 0 else "warn"))
    views = tta.get("per_view") or {}
    if views:
        sec.add(Table(["view / decode", tta.get("primary_metric", "score")], [[k, v] for k, v in views.items()]))
    return sec


def _evidence(ev: Any) -> str:
    if isinstance(ev, dict):
        return ", ".join(f"{k}={v}" for k, v in list(ev.items())[:6])
    return "" if ev is None else str(ev)
