"""Render a `Document` as Markdown; images are written to `report_files/` next to it."""

from __future__ import annotations

from pathlib import Path

from tunelab.io import atomic_write_bytes
from tunelab.reporting.doc import Document, Image, Pre, Table, Text, cell

ASSETS = "report_files"


def _md_cell(v) -> str:
    return cell(v).replace("|", "\\|").replace("\n", "<br>")


def render_markdown(doc: Document, out_dir: Path) -> str:
    lines = [f"# {doc.title}", "", doc.subtitle, ""]
    for s in doc.sections:
        lines += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Text):
                lines += [f"**{b.text}**" if b.tone in ("good", "bad") else b.text, ""]
            elif isinstance(b, Table):
                if b.caption:
                    lines += [f"*{b.caption}*", ""]
                lines.append("| " + " | ".join(b.headers) + " |")
                lines.append("|" + "---|" * len(b.headers))
                lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in b.rows]
                lines.append("")
            elif isinstance(b, Image):
                atomic_write_bytes(out_dir / ASSETS / f"{b.name}.png", b.png)
                lines += [f"![{b.title}]({ASSETS}/{b.name}.png)", ""]
            elif isinstance(b, Pre):
                if b.title:
                    lines += [f"**{b.title}**", ""]
                lines += ["```", b.text, "```", ""]
    return "\n".join(lines) + "\n"
