"""The report's own figures, drawn in a pass of their own once every section is built: a section
builder only describes a figure (its file, and how to draw it from the numbers it read), and this
pass writes the PNGs, so a section can be built, tested or rendered without drawing anything."""
from __future__ import annotations

from pathlib import Path

from zhbench.report.document import Fenced, Figure, Section


def _figures(blocks: list):
    for block in blocks:
        if isinstance(block, Fenced):
            yield from _figures(block.blocks)
        elif isinstance(block, Figure):
            yield block


def draw_figures(sections: list[Section], figures_dir: Path) -> None:
    """Draw, in report order, every figure the report draws itself into figures_dir (by its file name)."""
    for section in sections:
        for figure in _figures(section.blocks):
            if figure.draw is not None:
                figure.draw(figures_dir / Path(figure.path).name)
