"""The report as data: sections of text, tables, images and preformatted blocks.

Collectors build a `Document`; `html.py` and `markdown.py` render the same document, so the two
files never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass
class Text:
    text: str
    tone: str | None = None  # None | "good" | "bad" | "warn": colours the paragraph in HTML


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]
    caption: str | None = None
    row_tones: list[str | None] | None = None  # per row: None | "bad" | "good"


@dataclass
class Image:
    name: str  # file stem for report_files/<name>.png (Markdown) and the alt text
    title: str
    png: bytes


@dataclass
class Pre:
    text: str
    title: str | None = None


Block = Union[Text, Table, Image, Pre]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, block: Block | None) -> None:
        if block is not None:
            self.blocks.append(block)


@dataclass
class Document:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def add(self, section: Section) -> None:
        if section.blocks:
            self.sections.append(section)


def image(name: str, title: str, png: bytes | None) -> Image | None:
    return Image(name, title, png) if png else None


def cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return number(v)
    return str(v)


def number(v: float) -> str:
    """A float written by its size, not one fixed precision: a learning rate 1.5e-4 stays 1.5e-4
    (not 0.0001), a whole length 17.0 reads 17, a score keeps 4 decimals, a rate over 100 one."""
    if v != v or v in (float("inf"), float("-inf")):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) < 1e-3:
        mantissa, exponent = f"{v:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if abs(v) < 100:
        return f"{v:.4f}".rstrip("0").rstrip(".")
    return f"{v:,.1f}"
