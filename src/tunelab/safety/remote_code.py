"""`model.trust_remote_code: true` runs Python shipped with a model: say so, loudly, every run.

It is off by default (config/schema.py) and only ever taken from the config. When it is on, each
model source is announced once per process on stderr and in the log, before anything is loaded,
so a run log always shows that foreign code was allowed to execute.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
_announced: set[str] = set()


def warn_remote_code(source: str, enabled: bool) -> bool:
    """Announce that `source`'s own code may run; True when a warning was printed (once per source)."""
    if not enabled or source in _announced:
        return False
    _announced.add(source)
    message = (
        f"model.trust_remote_code is ON: Python code shipped with {source!r} may run in this process "
        "with your permissions; turn it off unless you have read that code"
    )
    log.warning(message)
    from tunelab import ui

    ui.err().print(f"[bold red]security warning:[/] {message}")
    return True
