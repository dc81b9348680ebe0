"""The `tunelab` command line: parse, call one function of the public API (`tunelab.api`), print.

Python users get every command as the same function (tunelab/__init__.py), so no logic lives here.

Each command imports its implementation lazily so `tunelab --help` and `tunelab schema` stay fast
(torch and transformers take seconds to import).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tunelab import ui
from tunelab.errors import TunelabError

app = typer.Typer(
    name="tunelab",
    help="Fine-tune transformer models from one YAML file, checked at every step.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _flags_without_type() -> None:
    """typer 0.2x prints a `<bool>` type after every on/off flag (`--help <bool>`, `--resume <bool>`),
    which reads as if the flag took a value; flags show no type here."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_tunelab", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._tunelab = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_type()

SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a config key: --set training.learning_rate=1e-4 (repeatable)."),
]
ConfigArg = Annotated[Path, typer.Argument(help="Path of the YAML config.", show_default=False)]
RunDirArg = Annotated[
    Path,
    typer.Argument(
        help="A run directory written by `tunelab train`, or latest:NAME (the newest run of config NAME in runs/).",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        from tunelab.version import __version__

        sys.stdout.write(f"tunelab {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Fine-tune transformer models from one YAML file, checked at every step."""


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn TunelabError into one red line + hint and a non-zero exit; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TunelabError as exc:
            _record_error(exc)
            ui.err().print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
            if exc.hint:
                ui.err().print(f"[yellow]hint:[/] {exc.hint}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            ui.err().print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


def _record_error(exc: TunelabError) -> None:
    # `tunelab experiment` runs each variant as a child process and records why it failed; the
    # class name is not in the one-line message, so the child leaves it in this file (if asked).
    target = os.environ.get("TUNELAB_ERROR_FILE")
    if target:
        from tunelab.io import atomic_write_json

        atomic_write_json(target, {"class": type(exc).__name__, "message": exc.message, "hint": exc.hint})


@app.command()
@_friendly
def schema() -> None:
    """Print the JSON schema of the config."""
    from tunelab import api

    sys.stdout.write(json.dumps(api.schema(), indent=2) + "\n")


@app.command()
@_friendly
def validate(config: ConfigArg, set_: SetOpt = None) -> None:
    """Validate a config and its data files without loading any model."""
    from tunelab import api

    api.validate(config, set_)


@app.command()
@_friendly
def prepare(config: ConfigArg, set_: SetOpt = None) -> None:
    """Validate, split and tokenize the data into the cache (no training)."""
    from tunelab import api

    api.prepare(config, set_)


@app.command()
@_friendly
def train(
    config: ConfigArg,
    set_: SetOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the latest run of this config from its last checkpoint.")
    ] = False,
    run_dir: Annotated[
        Optional[Path], typer.Option("--run-dir", help="Write (or resume) exactly this run directory.")
    ] = None,
    skip_doctor: Annotated[bool, typer.Option("--skip-doctor", help="Do not run preflight checks first.")] = False,
) -> None:
    """Train: validate, split, tokenize, preflight, train, evaluate, track."""
    from tunelab import api

    api.train(config, set_, resume=resume, run_dir=run_dir, skip_doctor=skip_doctor)


@app.command()
@_friendly
def predict(
    run_dir: RunDirArg,
    input: Annotated[Path, typer.Option("--input", "-i", help="File to predict (same formats as training data).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write predictions (CSV, or JSONL by suffix).")
    ],
    set_: SetOpt = None,
) -> None:
    """Predict a file with a trained run; written atomically, batched in length order."""
    from tunelab import api

    api.Run.open(run_dir).predict(input, output=output, overrides=set_)


@app.command()
@_friendly
def evaluate(
    run_dir: RunDirArg,
    input: Annotated[Path, typer.Option("--input", "-i", help="A labelled file to score.")],
    set_: SetOpt = None,
) -> None:
    """Score a labelled file with a trained run."""
    from tunelab import api

    api.Run.open(run_dir).evaluate(input, overrides=set_)


@app.command()
@_friendly
def doctor(
    config: ConfigArg,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as JSON.")] = False,
    overfit: Annotated[bool, typer.Option("--overfit", help="Also run the one-batch overfit test.")] = False,
) -> None:
    """Preflight checks on the real config, without training. Exit 1 on any error finding.

    An experiment file (base + variants) is checked variant by variant on each resolved config.
    """
    from tunelab import api
    from tunelab.experiments.doctor import experiment_findings_json, is_experiment_file

    # With --json, stdout carries only the JSON document (the API sends stage lines to stderr).
    if is_experiment_file(config):
        results = api.doctor_experiment(config, set_ or [], overfit=overfit, quiet=as_json)
        if as_json:
            print(json.dumps(experiment_findings_json(results), indent=2, ensure_ascii=False))
        raise typer.Exit(1 if any(not f.ok for f in results.values()) else 0)
    findings = api.doctor(config, set_, overfit=overfit, quiet=as_json)
    if as_json:
        print(json.dumps(findings.to_json(), indent=2, ensure_ascii=False))
    else:
        findings.print()
    raise typer.Exit(0 if findings.ok else 1)


@app.command()
@_friendly
def bench(
    config: ConfigArg,
    set_: SetOpt = None,
    steps: Annotated[
        Optional[int],
        typer.Option(
            help="Optimizer steps timed per configuration, rounded up to whole length-group cycles "
            "(default: two cycles)."
        ),
    ] = None,
    strategies: Annotated[
        Optional[str],
        typer.Option(help="Comma-separated strategies to compare (default: dynamic,grouped,packed,auto)."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(help="Directory for bench.md/bench.json/bench.png (default: <output_dir>/bench)."),
    ] = None,
) -> None:
    """Measure throughput of batching/precision strategies side by side, with naive and ideal references."""
    from tunelab import api

    api.benchmark(config, set_, steps=steps, strategies=strategies, out=out)


@app.command()
@_friendly
def export(
    run_dir: RunDirArg,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output", "-o", help="Target directory (default RUN_DIR/merged with --merge, else RUN_DIR/export)."
        ),
    ] = None,
    merge: Annotated[bool, typer.Option("--merge", help="Merge LoRA adapters into the base weights.")] = False,
) -> None:
    """Export a trained model (optionally merging LoRA adapters)."""
    from tunelab import api

    api.Run.open(run_dir).export(output, merge=merge)


@app.command()
@_friendly
def serve(
    run_dir: RunDirArg,
    set_: SetOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Interface to bind (serve.host; 0.0.0.0 for all).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (serve.port).")] = None,
    max_batch_size: Annotated[Optional[int], typer.Option(help="Texts per model batch (serve.max_batch_size).")] = None,
    max_wait_ms: Annotated[
        Optional[float], typer.Option(help="Longest wait for a batch to fill (serve.max_wait_ms).")
    ] = None,
    max_queue: Annotated[
        Optional[int], typer.Option(help="Texts waiting before 503 + Retry-After (serve.max_queue).")
    ] = None,
    max_texts_per_request: Annotated[Optional[int], typer.Option(help="serve.max_texts_per_request.")] = None,
    max_chars_per_text: Annotated[Optional[int], typer.Option(help="serve.max_chars_per_text.")] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="uvicorn worker processes, one model copy each (serve.workers).")
    ] = None,
    api_key_env: Annotated[
        Optional[str], typer.Option(help="NAME of the env variable holding the API key (serve.api_key_env).")
    ] = None,
    model_dir: Annotated[
        Optional[Path],
        typer.Option("--model-dir", help="Serve this model directory (e.g. an export) instead of RUN_DIR/model."),
    ] = None,
) -> None:
    """Serve a trained run over HTTP (POST /v1/predict) with dynamic batching; SIGTERM stops it gracefully."""
    from tunelab import api

    flags = {
        "host": host,
        "port": port,
        "max_batch_size": max_batch_size,
        "max_wait_ms": max_wait_ms,
        "max_queue": max_queue,
        "max_texts_per_request": max_texts_per_request,
        "max_chars_per_text": max_chars_per_text,
        "workers": workers,
        "api_key_env": api_key_env,
    }
    api.Run.open(run_dir).serve(set_, model_dir=model_dir, **flags)


@app.command()
@_friendly
def experiment(
    spec: Annotated[
        Path, typer.Argument(help="Experiment YAML: base config + variants (+ folds).", show_default=False)
    ],
    only: Annotated[
        Optional[list[str]], typer.Option("--only", help="Run only these variants (retry failed ones).")
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Run several variants x folds, each in its own process; survive failures; summarize."""
    from tunelab import api

    api.experiment(spec, only=only or [], overrides=set_ or [])


@app.command()
@_friendly
def ensemble(
    exp_dir: Annotated[Path, typer.Argument(help="An experiment directory.", show_default=False)],
    method: Annotated[str, typer.Option(help="mean | weighted | vote | stacking | consensus | best")] = "auto",
) -> None:
    """Ensemble the runs of an experiment and compare with the best single model."""
    from tunelab import api

    api.ensemble(exp_dir, method=method)


@app.command()
@_friendly
def baseline(
    config: ConfigArg,
    set_: SetOpt = None,
) -> None:
    """Zero-/few-shot baseline through any OpenAI-compatible chat-completions API."""
    from tunelab import api

    api.baseline(config, set_ or [])


@app.command()
@_friendly
def report(
    directory: Annotated[
        Path, typer.Argument(help="A run or experiment directory, or latest:NAME (a run).", show_default=False)
    ],
    compare: Annotated[
        Optional[Path],
        typer.Option("--compare", help="Another run: write a two-run comparison page into DIRECTORY instead."),
    ] = None,
) -> None:
    """Write report.html (self-contained) and report.md for a run or an experiment."""
    from tunelab import api

    api.report(directory, compare=compare)


@app.command()
@_friendly
def diff(
    run_a: Annotated[Path, typer.Argument(help="A run directory, or latest:NAME.", show_default=False)],
    run_b: Annotated[
        Path, typer.Argument(help="Another run directory (or latest:NAME), or a YAML config.", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON (docs/diff.md).")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also show differences that do not matter (paths, names, timestamps).")
    ] = False,
) -> None:
    """Explain why two runs differ in speed and in results, differences ranked by effect."""
    from tunelab import api
    from tunelab.diff.render import print_diff, print_json

    result = api.compare(run_a, run_b)
    (print_json if as_json else print_diff)(result, show_all)


@app.command("fix-text")
@_friendly
def fix_text(
    file: Annotated[Path, typer.Argument(help="Data file (CSV, TSV, JSONL, Parquet) whose text is mojibake.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the repaired copy (never in place).")],
    column: Annotated[
        Optional[list[str]], typer.Option("--column", "-c", help="Only this column (repeatable); default: all.")
    ] = None,
) -> None:
    """Repair mojibake (UTF-8 read with a legacy code page) into a new file; exit 1 if bytes were lost."""
    from tunelab import api
    from tunelab.data.fixtext import print_report

    code = print_report(api.fix_text(file, output, column))
    if code:
        raise typer.Exit(code)


def main() -> None:
    # Keep the library noise (HF advisory warnings, bitsandbytes banners) off the user's screen.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tunelab.safety.secrets import install_global_log_redaction

    install_global_log_redaction()
    app()


if __name__ == "__main__":
    main()
