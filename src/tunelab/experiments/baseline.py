"""`tunelab baseline CONFIG`: zero-/few-shot through an OpenAI-compatible chat-completions API.

Same config file, same data split and same metrics as fine-tuned runs (the `baseline:` section
says which endpoint, model and prompt). Results go to `<output_dir>/baseline-<name>/`:
baseline.json (scores, token usage, failures), predictions.jsonl, config.yaml (no key), and the
response cache (cache/), so an interrupted run resumes without paying twice.
"""

from __future__ import annotations

import os
import random
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tunelab import ui
from tunelab.config.loader import load_config
from tunelab.config.schema import BaselineConfig, Config
from tunelab.errors import ConfigError, DataError
from tunelab.evaluation.scoring import score
from tunelab.experiments.llm_client import ApiError, ChatClient
from tunelab.experiments.predictions import SplitPreds, write_preds
from tunelab.io import atomic_write_json, atomic_write_text

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNMAPPED = "<unmapped>"


def baseline_command(config_path: Path, overrides: list[str]) -> dict[str, Any]:
    cfg = load_config(config_path, overrides)
    b = cfg.baseline
    if b is None:
        raise ConfigError(
            f"{config_path}: no `baseline:` section", hint="add baseline: {base_url: ..., model: ..., api_key_env: ...}"
        )
    client = ChatClient(b.base_url, _api_key(b), b.timeout_s, b.max_retries, b.backoff_s, b.max_backoff_s)
    out_dir = Path(b.output_dir or Path(cfg.output_dir) / f"baseline-{cfg.name}")
    client.cache_dir = out_dir / "cache"
    frame, gold, train, labels = _data(cfg, b)
    inputs = [_input_text(cfg, row) for _, row in frame.iterrows()]
    ids = _ids(cfg, frame)
    shots = _few_shot(cfg, b, train)
    bodies = [_body(cfg, b, text, shots, labels) for text in inputs]
    replies = _run_all(client, bodies, b.concurrency)
    result = _score_and_write(cfg, b, out_dir, ids, gold, labels, replies, client)
    return result


def _api_key(b: BaselineConfig) -> str | None:
    if b.api_key_env is None:
        return None
    if not ENV_NAME.match(b.api_key_env):
        # Never echo the value: it is most likely the key itself, pasted in the wrong place.
        raise ConfigError(
            "baseline.api_key_env must be the NAME of an environment variable (the value given is not a name and is not shown)",
            hint="export MY_API_KEY=... and set baseline.api_key_env: MY_API_KEY",
        )
    key = os.environ.get(b.api_key_env)
    if not key:
        raise ConfigError(
            f"baseline.api_key_env: environment variable {b.api_key_env} is not set",
            hint=f"export {b.api_key_env}=...  (or api_key_env: null for servers without auth)",
        )
    return key


def _data(cfg: Config, b: BaselineConfig):
    from tunelab.data.roles import target_columns
    from tunelab.data.splits import load_splits

    splits = load_splits(cfg)
    frame = splits.validation if b.split == "validation" else splits.test
    if frame is None or not len(frame):
        raise DataError(
            f"no {b.split} rows to run the baseline on",
            hint="set data.validation_file / data.test_file or baseline.split",
        )
    if b.max_rows:
        frame = frame.iloc[: b.max_rows]
    gold_col = target_columns(cfg.task)[0]
    gold = [str(v) for v in frame[gold_col].tolist()] if gold_col in frame.columns else None
    return frame, gold, splits.train, splits.label_names


def _ids(cfg: Config, frame) -> list[Any]:
    col = cfg.task.id_column
    return frame[col].tolist() if col and col in frame.columns else list(range(len(frame)))


def _input_text(cfg: Config, row) -> str:
    """The task's input columns, one per line (a text pair: first text, then second)."""
    return "\n".join(str(row[c]) for c in cfg.task.input_columns())


def _target_text(cfg: Config, row) -> str:
    from tunelab.data.roles import target_columns

    return str(row[target_columns(cfg.task)[0]])


def _few_shot(cfg: Config, b: BaselineConfig, train) -> list[tuple[str, str]]:
    shots = [(e.input, e.output) for e in b.examples]
    if b.num_train_examples and train is not None and len(train):
        rows = random.Random(cfg.data.split_seed).sample(range(len(train)), min(b.num_train_examples, len(train)))
        shots += [(_input_text(cfg, train.iloc[i]), _target_text(cfg, train.iloc[i])) for i in rows]
    return shots


def _body(
    cfg: Config, b: BaselineConfig, text: str, shots: list[tuple[str, str]], labels: list[str] | None
) -> dict[str, Any]:
    template = b.prompt_template or cfg.task.baseline_prompt
    fill = {"labels": ", ".join(labels or [])}
    messages: list[dict[str, str]] = []
    system = b.system_prompt or cfg.task.system_message()
    if system:
        messages.append({"role": "system", "content": system})
    for shot_in, shot_out in shots:
        messages.append({"role": "user", "content": template.format(input=shot_in, **fill)})
        messages.append({"role": "assistant", "content": shot_out})
    messages.append({"role": "user", "content": template.format(input=text, **fill)})
    return {
        "model": b.model,
        "messages": messages,
        "temperature": b.temperature,
        "max_tokens": b.max_tokens,
        **b.extra_body,
    }


def _run_all(client: ChatClient, bodies: list[dict[str, Any]], concurrency: int) -> list[Any]:
    """One reply (or ApiError) per body, in order; at most `concurrency` requests in flight."""
    out: list[Any] = [None] * len(bodies)
    with ui.progress(unit="requests") as progress, ThreadPoolExecutor(concurrency) as pool:
        bar = progress.add_task("requests", total=len(bodies))
        futures = {pool.submit(client.complete, body): i for i, body in enumerate(bodies)}
        for fut in as_completed(futures):
            try:
                out[futures[fut]] = fut.result()
            except ApiError as exc:
                out[futures[fut]] = exc
            progress.advance(bar)
    return out


def map_label(answer: str, labels: list[str]) -> str:
    """The label an answer names: exact (case-insensitive), else the first label found as a word."""
    clean = answer.strip().strip(".:'\"` ").lower()
    by_lower = {lab.lower(): lab for lab in labels}
    if clean in by_lower:
        return by_lower[clean]
    hits = [
        (m.start(), lab)
        for lab in labels
        if (m := re.search(rf"(?<!\w){re.escape(lab.lower())}(?!\w)", answer.lower()))
    ]
    return min(hits)[1] if hits else UNMAPPED


def _score_and_write(cfg, b, out_dir, ids, gold, labels, replies, client) -> dict[str, Any]:
    classification = cfg.task.class_column() is not None  # answers are classes: map them onto the labels
    preds, raw, failures, usage = (
        [],
        [],
        [],
        {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "api_calls": 0, "cached_responses": 0},
    )
    ok_idx = []
    for i, reply in enumerate(replies):
        if isinstance(reply, ApiError):
            failures.append({"id": ids[i], "error": str(reply)})
            preds.append(None)
            raw.append(None)
            continue
        ok_idx.append(i)
        raw.append(reply.content)
        preds.append(map_label(reply.content, labels or []) if classification else reply.content.strip())
        usage["cached_responses" if reply.cached else "api_calls"] += 1
        for k, v in reply.usage.items():
            usage[k] = usage.get(k, 0) + v
    scores = (
        score(cfg.task, [gold[i] for i in ok_idx], [preds[i] for i in ok_idx], cfg.evaluation.rouge.model_dump())
        if gold is not None and ok_idx
        else {}
    )
    write_preds(
        out_dir / "predictions.jsonl",
        SplitPreds(ids=ids, predictions=preds, gold=gold, label_names=labels, extra={"raw_answer": raw}),
    )
    result = {
        "model": b.model,
        "base_url": client.scrub(b.base_url),
        "split": b.split,
        "rows": len(ids),
        "scored_rows": len(ok_idx),
        "failed_rows": len(failures),
        "failures": failures[:50],
        "unmapped": sum(p == UNMAPPED for p in preds) if classification else None,
        "few_shot_examples": len(b.examples) + b.num_train_examples,
        "scores": scores,
        "usage": usage,
        "primary_metric": cfg.task.primary_metric,
    }
    atomic_write_json(out_dir / "baseline.json", result)
    atomic_write_text(out_dir / "config.yaml", _safe_config(cfg, client))
    _track(cfg, out_dir, result)
    _print(result, out_dir)
    return result


def _track(cfg: Config, out_dir: Path, result: dict[str, Any]) -> None:
    """Log the baseline like a run (same tracker: redacted params, final_<split>_<metric>) to compare in MLflow."""
    from tunelab.training.tracking import start_tracker

    tracker = start_tracker(cfg, out_dir)
    tracker.set_tags({"tunelab.kind": "baseline", "tunelab.baseline_model": result["model"]})
    metrics = {
        f"final_{result['split']}_{k}": v
        for k, v in result["scores"].items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    metrics.update({f"baseline_{k}": v for k, v in result["usage"].items()})
    metrics["baseline_failed_rows"] = result["failed_rows"]
    tracker.log_metrics(metrics)
    tracker.log_artifact(out_dir / "baseline.json")
    tracker.end("FINISHED")


def _safe_config(cfg: Config, client: ChatClient) -> str:
    from tunelab.safety.secrets import redacted_config_yaml

    # The config holds the key's variable NAME, never the key; scrub anyway in case one was pasted.
    return client.scrub(redacted_config_yaml(cfg))


def _print(result: dict[str, Any], out_dir: Path) -> None:
    s = result["scores"]
    primary = result["primary_metric"]
    head = (
        f"baseline {result['model']}: {primary} = {s[primary]:.4f}"
        if primary in s
        else f"baseline {result['model']}: not scored"
    )
    console = ui.console()
    console.print(f"[bold]{head}[/] on {result['scored_rows']}/{result['rows']} {result['split']} rows")
    if result["failed_rows"]:
        console.print(
            f"[yellow]{result['failed_rows']} request(s) failed[/] (recorded in baseline.json, not scored); "
            f"first: {result['failures'][0]['error']}"
        )
    u = result["usage"]
    console.print(
        f"tokens: {u['prompt_tokens']} prompt + {u['completion_tokens']} completion; "
        f"{u['api_calls']} API calls, {u['cached_responses']} from cache"
    )
    console.print(f"results: {out_dir / 'baseline.json'}")
