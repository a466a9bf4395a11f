"""The report as a document: sections of blocks (text, tables, figures, fenced run-to-run blocks),
rendered as markdown (reports/report.md) and as one self-contained HTML page (reports/report.html).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

from zhbench import plots

FENCES = ("timing", "provenance")
_FENCED = re.compile(r"<!-- (timing|provenance) -->\n.*?<!-- /\1 -->\n?", re.S)


@dataclass
class Table:
    id: str                 # HTML id, stable: tests look tables up by it
    header: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclass
class Figure:
    path: str               # relative to the report's directory, e.g. "figures/confusion_fasttext_char.png"
    alt: str
    # How the report draws it, given the PNG to write; None for a figure another stage draws (the
    # evaluate stages' confusion matrices). Sections only describe figures: figures.draw_figures draws.
    draw: Callable[[Path], Any] | None = None


@dataclass
class Heading:
    text: str


@dataclass
class Fenced:
    """Blocks that vary run to run (kind: timing | provenance); excluded from the determinism check."""
    kind: str
    blocks: list


Block = Union[str, Table, Figure, Heading, Fenced]


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, Heading):
        return f"### {block.text}"
    if isinstance(block, Figure):
        return f"![{block.alt}]({block.path})"
    if isinstance(block, Table):
        lines = [f"*{block.caption}*", ""] if block.caption else []
        lines += ["| " + " | ".join(_md_cell(h) for h in block.header) + " |",
                  "|" + "|".join("---" for _ in block.header) + "|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Fenced):
        inner = "\n\n".join(_md_block(b) for b in block.blocks)
        return f"<!-- {block.kind} -->\n{inner}\n<!-- /{block.kind} -->"
    raise TypeError(f"unknown report block {block!r}")


def render_markdown(title_blocks: list[str], sections: list[Section]) -> str:
    parts = list(title_blocks)
    for sec in sections:
        parts.append(f"## {sec.title}")
        parts += [_md_block(b) for b in sec.blocks]
    return "\n\n".join(parts) + "\n"


def deterministic_part(markdown: str) -> str:
    """The report without its fenced timing and provenance blocks: byte-identical across clean reruns."""
    return _FENCED.sub("", markdown)


def _inline_html(text: str) -> str:
    """The little inline markdown the report uses: `code`, **bold**, *italic*."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<em>\1</em>", out)


def _html_block(block: Block, report_dir: Path) -> str:
    if isinstance(block, str):
        return f"<p>{_inline_html(block)}</p>"
    if isinstance(block, Heading):
        return f"<h3>{_inline_html(block.text)}</h3>"
    if isinstance(block, Figure):
        path = report_dir / block.path
        if not path.is_file():
            return f'<p class="missing">Figure not found: <code>{html.escape(block.path)}</code></p>'
        return (f'<figure><img alt="{html.escape(block.alt)}" src="{plots.png_data_uri(path)}">'
                f"<figcaption>{html.escape(block.alt)}</figcaption></figure>")
    if isinstance(block, Table):
        head = "".join(f"<th>{_inline_html(str(h))}</th>" for h in block.header)
        body = "".join("<tr>" + "".join(f"<td>{_inline_html(str(c))}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        caption = f"<caption>{_inline_html(block.caption)}</caption>" if block.caption else ""
        return f'<table id="{block.id}">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    if isinstance(block, Fenced):
        inner = "\n".join(_html_block(b, report_dir) for b in block.blocks)
        note = ("measured times: they change from run to run" if block.kind == "timing"
                else "environment provenance: changes with machine and commit")
        return f'<div class="{block.kind}"><p class="fence-note">{note}</p>\n{inner}\n</div>'
    raise TypeError(f"unknown report block {block!r}")


CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #aaa; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 7px; text-align: left; }
th { background: #eef; } tbody tr:nth-child(even) { background: #f7f7f7; }
caption { caption-side: top; text-align: left; font-style: italic; padding: 4px 0; max-width: 1100px; }
code { background: #f2f2f2; padding: 0 2px; }
figure { display: inline-block; vertical-align: top; margin: 0.5em 1% 0.5em 0; width: 48%; }
figcaption { font-size: 12px; color: #555; } img { width: 100%; height: auto; border: 1px solid #ddd; }
div.timing, div.provenance { border-left: 4px solid #e9a23b; padding-left: 12px; }
p.fence-note { color: #a66a00; font-size: 12px; margin: 4px 0; }
p.missing { color: #b00; }
nav ul { columns: 2; }
""".strip()


def render_html(title_blocks: list[str], sections: list[Section], report_dir: Path) -> str:
    """A self-contained page: inline CSS, figures as base64 PNG, no script, no external resource."""
    nav = "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in sections)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>zhbench report</title>", f"<style>\n{CSS}\n</style></head><body>",
             f"<h1>{_inline_html(title_blocks[0].lstrip('# '))}</h1>"]
    parts += [f"<p>{_inline_html(t)}</p>" for t in title_blocks[1:]]
    parts.append(f"<nav><ul>{nav}</ul></nav>")
    for sec in sections:
        parts.append(f'<section id="{sec.id}"><h2>{html.escape(sec.title)}</h2>')
        parts += [_html_block(b, report_dir) for b in sec.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

