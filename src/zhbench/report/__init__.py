"""Build reports/report.md and a self-contained reports/report.html from metrics files only.

No number in the report is typed by hand. Each section reads the metrics JSON its stages wrote,
puts the write-up's reference number (config/references.yaml) beside ours, and names the profile,
dataset variant and the command that regenerates it (zhbench.workflow.commands). Metrics that are
absent are said to be absent, with the stage to run; they are never filled in.

Determinism. Quality metrics repeat byte for byte; measured times (`*_timing.json`) and the
environment provenance (git commit, platform) do not. Every block built from them is fenced:

    <!-- timing --> ... <!-- /timing -->            (times, and figures drawn from times)
    <!-- provenance --> ... <!-- /provenance -->    (environment provenance)

`deterministic_part(markdown)` drops the fenced blocks; what is left must be byte-identical across
two clean runs with the same quality metrics (`make reproduce-check` compares exactly that).

One small function per section, in a module per section or group of related sections; each
returns a `Section` of blocks (text, tables, figures, fenced timing blocks, see `document`) that
`render_markdown` and `render_html` turn into the two files. The report's own figures are drawn
afterwards, in one pass (`figures`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import yaml

from zhbench import layout
from zhbench.report.backbones import section_backbones
from zhbench.report.baselines import section_baselines
from zhbench.report.dataset import section_dataset
from zhbench.report.distillation import section_distillation
from zhbench.report.document import (FENCES, Fenced, Section, Table, deterministic_part, render_html,
                                     render_markdown)
from zhbench.report.figures import draw_figures
from zhbench.report.inputs import ReportInputs
from zhbench.report.pretraining import section_pretraining
from zhbench.report.quantization import section_quantization
from zhbench.report.tasks import section_lcqmc, section_ner
from zhbench.report.timing import section_accuracy_latency, section_cached_timing, section_device_speed
from zhbench.workflow import commands

__all__ = ["FENCES", "build_report", "build_reports", "build_sections", "deterministic_part", "title_blocks"]

SECTIONS: list[Callable[[ReportInputs], Section]] = [
    section_dataset, section_baselines, section_backbones, section_pretraining, section_quantization, section_distillation,
    section_accuracy_latency, section_cached_timing, section_device_speed, section_ner, section_lcqmc,
]


def section_provenance(prov: dict) -> Section:
    rows = [[k, f"`{v}`"] for k, v in prov.items() if k != "packages"]
    rows += [[f"package `{k}`", v or "not installed"] for k, v in prov.get("packages", {}).items()]
    return Section("provenance", "Environment provenance", [Fenced("provenance", [
        Table("tbl-provenance", ["what", "value"], rows),
        "Also in `metrics/provenance.json`, rewritten by every report run.",
    ])])


def title_blocks(params: dict) -> list[str]:
    own = layout.own_data(params)
    data = (f"your own data `{layout.task(params)}` (`{own['path']}`)" if own else
            f"dataset variant `{params.get('data', {}).get('variant', '?')}`")
    refs = ("reference numbers come from the write-ups (`config/references.yaml`)" if layout.on_writeup_data(params)
            else "the write-ups' reference numbers are left out: they are about other data")
    return [
        f"# zhbench report: {layout.task(params)}",
        f"Profile `{params.get('profile', 'default')}`, {data}. Every number below is read from the metrics files "
        f"under `metrics/`; {refs}.",
        f"Regenerate the whole report: `{commands.RUN_ALL_SNAKEMAKE}` (Snakemake) or `{commands.RUN_ALL_DVC}`. "
        "Blocks fenced as *timing* or *provenance* hold measured times and environment details, which change "
        "from run to run; everything else repeats byte for byte (`make reproduce-check`).",
    ]


def build_sections(metrics_dir: str | os.PathLike, references_path: str | os.PathLike, params: dict,
                   prov: dict | None = None, figures_dir: str | os.PathLike | None = None) -> list[Section]:
    """Every section, in report order; draws the report's own figures into `figures_dir` when given."""
    references = yaml.safe_load(Path(references_path).read_text(encoding="utf-8"))
    inp = ReportInputs(Path(metrics_dir), references, params)
    sections = [section(inp) for section in SECTIONS]
    if not layout.on_writeup_data(params):
        for sec in sections:
            if sec.id in WRITEUP_TASK_SECTIONS:
                _drop_writeup_columns(sec.blocks)
    if prov is not None:
        sections.append(section_provenance(prov))
    if figures_dir:
        draw_figures(sections, Path(figures_dir))
    return sections


# Sections about the classification task: on other data than the write-ups', their reference
# columns would compare numbers about different data, so they go.
WRITEUP_TASK_SECTIONS = {"baselines", "backbones", "quantization", "distillation", "accuracy-latency", "cached-timing",
                         "device-speed"}


def _drop_writeup_columns(blocks: list) -> None:
    for block in blocks:
        if isinstance(block, Fenced):
            _drop_writeup_columns(block.blocks)
        if not isinstance(block, Table):
            continue
        keep = [i for i, h in enumerate(block.header) if "write-up" not in h.lower()]
        block.header = [block.header[i] for i in keep]
        block.rows = [[row[i] for i in keep] for row in block.rows]
        block.caption = " ".join(s for s in re.split(r"(?<=\.) ", block.caption) if "write-up" not in s.lower())


def build_report(metrics_dir: str | os.PathLike, references_path: str | os.PathLike, params: dict,
                 prov: dict | None = None, figures_dir: str | os.PathLike | None = None) -> str:
    """The markdown report (draws the report's own figures into `figures_dir` when given)."""
    return render_markdown(title_blocks(params), build_sections(metrics_dir, references_path, params, prov,
                                                                figures_dir))


def build_reports(metrics_dir: str | os.PathLike, references_path: str | os.PathLike, params: dict,
                  report_dir: str | os.PathLike, prov: dict | None = None) -> tuple[str, str]:
    """(markdown, html) for a report living in `report_dir`; figures are drawn into report_dir/figures."""
    report_dir = Path(report_dir)
    sections = build_sections(metrics_dir, references_path, params, prov, report_dir / "figures")
    titles = title_blocks(params)
    return render_markdown(titles, sections), render_html(titles, sections, report_dir)
