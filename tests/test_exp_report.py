"""`tunelab report`: self-contained HTML + Markdown, checked in a real headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from exp_support import write_experiment, write_run
from tunelab.cli import app
from tunelab.experiments.ensemble import ensemble_command

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IMG_RE = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
# Written into a copy of the page: the browser reports each image's decoded size into the DOM.
PROBE = (
    "<script>window.addEventListener('load',function(){var o=[];document.querySelectorAll('img')"
    ".forEach(function(i){o.push(i.alt+':'+i.naturalWidth+'x'+i.naturalHeight)});"
    "var p=document.createElement('pre');p.id='probe';p.textContent=o.join(';');document.body.appendChild(p);});</script>"
)


def _chromium(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    base = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


def _images(html: str) -> dict[str, bytes]:
    return {m.group(1): base64.b64decode(m.group(2)) for m in IMG_RE.finditer(html)}


def test_run_report_has_every_section_and_no_external_resources(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    probs = np.eye(3)[y] * 0.8 + 0.2 / 3
    run = write_run(tmp_path / "run", "demo", probs, y)
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    for title in ("Configuration", "Data", "Training curves", "Metrics", "Doctor findings"):
        assert f"<h2>{title}</h2>" in html
    images = _images(html)
    assert {"loss", "learning_rate", "throughput", "confusion_matrix", "label_distribution", "length_histogram"} <= set(
        images
    )
    assert all(png.startswith(b"\x89PNG") and len(png) > 2000 for png in images.values())
    assert not re.search(r'(src|href)="(https?:|//)', html)  # offline: nothing fetched
    assert "labels are imbalanced" in html and "8.0% of training rows" in html
    md = (run / "report.md").read_text()
    assert "## Metrics" in md and "![Loss](report_files/loss.png)" in md
    assert (run / "report_files" / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_experiment_report_shows_comparison_failures_and_ensemble(tmp_path):
    exp = write_experiment(tmp_path / "exp", {"strong": 0.85, "weak": 0.6}, failed="broken")
    ensemble_command(exp)
    result = CliRunner().invoke(app, ["report", str(exp)])
    assert result.exit_code == 0, result.output
    html = (exp / "report.html").read_text()
    assert "2 of 3 runs succeeded, 1 failed." in html
    assert "ModelError" in html and "fix model.name_or_path" in html  # the failure with its cause
    ens = json.loads((exp / "ensemble.json").read_text())
    assert ens["verdict"] in html
    assert {"compare_primary", "compare_loss", "ensemble"} <= set(_images(html))


def test_report_rejects_other_directories(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "neither a run" in result.output


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/test-setup.sh installs it with apt)")
def test_report_renders_in_headless_chromium(tmp_path):
    exp = write_experiment(tmp_path / "exp", {"strong": 0.85, "weak": 0.6}, failed="broken")
    ensemble_command(exp)
    CliRunner().invoke(app, ["report", str(exp)])
    page = (exp / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = _chromium(["--dump-dom", probe.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<table>") >= 4 and "Failures and their causes" in dom.stdout
    sizes = re.search(r'<pre id="probe">([^<]*)</pre>', dom.stdout)
    assert sizes, "the page's load handler did not run"
    decoded = dict(item.split(":") for item in sizes.group(1).split(";"))
    assert set(decoded) == set(_images(page))
    assert all(int(v.split("x")[0]) > 100 and int(v.split("x")[1]) > 100 for v in decoded.values())
    shot = tmp_path / "shot.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1200,1600", (exp / "report.html").as_uri()], tmp_path)
    assert res.returncode == 0 and shot.is_file()
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"))
    assert img.std() > 10  # not a blank page
