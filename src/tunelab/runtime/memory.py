"""This process's peak resident memory, measured so that a parent's memory never counts.

`resource.getrusage(RUSAGE_SELF).ru_maxrss` is the obvious call, but Linux carries it over fork + exec:
a training or benchmark process started from a large parent (a pytest session, an experiment runner
that has loaded a model) reports the parent's RSS as its own peak (1.7 GB instead of 0.9 GB, seen in
CI). `VmHWM` in /proc/self/status belongs to this process's own address space, so it is the measure
where it exists; elsewhere (macOS) ru_maxrss is all there is.
"""

from __future__ import annotations

import sys


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since its exec, in bytes."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS reports bytes, Linux KiB
