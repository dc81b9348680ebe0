"""A child's peak memory is its own: Linux carries ru_maxrss over fork + exec, VmHWM it does not."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = "from tunelab.runtime.memory import peak_rss_bytes; print(peak_rss_bytes())"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork + exec carry-over is Linux behaviour")
def test_child_peak_does_not_include_a_large_parent():
    ballast = bytearray(400 * 2**20)  # 400 MiB resident in the parent (zero pages are touched below)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    child_peak = int(out.strip().splitlines()[-1])
    del ballast
    assert child_peak < 300 * 2**20, child_peak / 2**20  # a bare interpreter + tunelab import is ~20-60 MiB


def test_peak_is_at_least_current_rss():
    import psutil

    from tunelab.runtime.memory import peak_rss_bytes

    assert peak_rss_bytes() >= psutil.Process().memory_info().rss * 0.95
