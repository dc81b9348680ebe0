"""Render a `Document` as one self-contained HTML page: inline CSS, images as data URIs, no scripts,
no external resources, so it opens offline and can be mailed as a single file."""

from __future__ import annotations

import base64
import html
import re

from tunelab.reporting.doc import Document, Image, Pre, Table, Text, cell

CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px;font-size:26px} .sub{color:#5b6474;margin:0 0 20px}
nav{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:10px 14px;margin-bottom:18px;font-size:14px}
nav a{margin-right:14px;color:#2456c7;text-decoration:none}
section{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:16px 20px;margin-bottom:18px}
h2{font-size:19px;margin:0 0 12px;border-bottom:1px solid #eef0f3;padding-bottom:6px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0 14px;display:block;overflow-x:auto}
th,td{border:1px solid #e1e4ea;padding:5px 8px;text-align:left;vertical-align:top;white-space:pre-wrap}
th{background:#f0f2f6} tr.bad td{background:#fdecec} tr.good td{background:#eaf7ee}
caption{caption-side:top;text-align:left;color:#5b6474;font-size:13px;padding-bottom:4px}
figure{margin:10px 0 16px} figure img{max-width:100%;height:auto;border:1px solid #eef0f3}
figcaption{font-size:13px;color:#5b6474}
p.good{color:#1b7a3a;font-weight:600} p.bad{color:#b42318;font-weight:600} p.warn{color:#a15c00}
pre{background:#f3f4f7;padding:10px;border-radius:6px;font-size:12px;overflow-x:auto;white-space:pre-wrap}
"""


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def _table(t: Table) -> str:
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{html.escape(t.caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in t.headers) + "</tr></thead><tbody>")
    tones = t.row_tones or [None] * len(t.rows)
    for row, tone in zip(t.rows, tones):
        cls = f' class="{tone}"' if tone else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _block(b) -> str:
    if isinstance(b, Text):
        cls = f' class="{b.tone}"' if b.tone else ""
        return f"<p{cls}>{html.escape(b.text)}</p>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Image):
        data = base64.b64encode(b.png).decode("ascii")
        return (
            f'<figure><img alt="{html.escape(b.name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(b.title)}</figcaption></figure>"
        )
    if isinstance(b, Pre):
        title = f"<p><b>{html.escape(b.title)}</b></p>" if b.title else ""
        return f"{title}<pre>{html.escape(b.text)}</pre>"
    raise TypeError(type(b).__name__)


def render_html(doc: Document) -> str:
    nav = "".join(f'<a href="#{_anchor(s.title)}">{html.escape(s.title)}</a>' for s in doc.sections)
    body = "".join(
        f'<section id="{_anchor(s.title)}"><h2>{html.escape(s.title)}</h2>{"".join(_block(b) for b in s.blocks)}</section>'
        for s in doc.sections
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>{html.escape(doc.title)}</h1><p class="sub">{html.escape(doc.subtitle)}</p>'
        f"<nav>{nav}</nav>{body}</main></body></html>\n"
    )
