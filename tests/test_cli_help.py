"""`tunelab CMD --help`: flags read as flags, and options whose value comes from elsewhere say so."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tunelab.cli import app

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_show_no_value_type(command):
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output  # `--resume <bool>` read as if the flag took a value


def test_bench_help_states_its_defaults():
    text = " ".join(CliRunner().invoke(app, ["bench", "--help"], terminal_width=100).output.split())
    for default in ("(default: two cycles)", "(default: dynamic,grouped,packed,auto)", "(default: <output_dir>/bench)"):
        assert default in text.replace("│ ", "").replace(" │", ""), default
