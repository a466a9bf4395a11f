"""Build reports/report.md from metrics files only: no number in the report is typed by hand.

Each section reads the metrics JSON its stages wrote, puts the write-up's reference number
(config/references.yaml) beside ours, and names the profile, dataset variant and the command that
regenerates it. A section whose metrics are absent is left out with a note, never filled in.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from zhbench.io import read_json

TASK = "thucnews10"


@dataclass
class ReportInputs:
    metrics_dir: Path
    references: dict
    params: dict

    def metrics(self, *parts: str) -> dict | None:
        path = self.metrics_dir.joinpath(*parts)
        return read_json(path) if path.is_file() else None


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def num(x: float | None, fmt: str = ".4f") -> str:
    return "—" if x is None else format(x, fmt)


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance_line(m: dict) -> str:
    return f"profile `{m.get('profile', '?')}`, dataset variant `{m.get('variant', '?')}`"


def section_dataset(inp: ReportInputs) -> str | None:
    stats = inp.metrics(TASK, "dataset_stats.json")
    if stats is None:
        return None
    rows = []
    for split, s in stats["splits"].items():
        rows.append([split, s["rows"], s["skipped_rows"], s["duplicate_titles"],
                     num(s["char_length"].get("mean"), ".1f"), num(s["char_length"].get("p95"), ".0f"),
                     num(s["token_length"]["word"].get("mean"), ".1f"),
                     min(s["class_counts"].values()), max(s["class_counts"].values())])
    overlap = ", ".join(f"{k}: {v}" for k, v in stats["overlap"].items())
    return "\n".join([
        "## Dataset statistics",
        f"News titles, 10 classes ({', '.join(stats['labels'])}); {provenance_line(stats)}.",
        "",
        table(["split", "rows", "skipped", "duplicate titles", "mean chars", "p95 chars", "mean words",
               "min class", "max class"], rows),
        "",
        f"Titles shared between splits: {overlap}.",
        "",
        "Regenerate: `snakemake --cores 4 preprocess` or `dvc repro preprocess`.",
    ])


def section_baselines(inp: ReportInputs) -> str | None:
    models = inp.params["baselines"]["models"]
    refs = inp.references.get(TASK, {}).get("baselines", {})
    rows, first = [], None
    for model in models:
        m = inp.metrics(TASK, f"{model}.json")
        if m is None:
            rows.append([f"`{model}`", "not run", "", "", "", pct(refs.get(model, {}).get("test_accuracy"))])
            continue
        first = first or m
        ref = refs.get(model, {}).get("test_accuracy")
        delta = "—" if ref is None else f"{100 * (m['test']['accuracy'] - ref):+.2f}"
        rows.append([f"`{model}`", m.get("granularity", ""), pct(m["dev"]["accuracy"]), pct(m["test"]["accuracy"]),
                     pct(m["test"]["macro"]["f1"]), pct(ref), delta])
    header = ["model", "granularity", "dev acc %", "test acc %", "test macro-F1 %", "write-up test acc %",
              "Δ vs write-up"]
    rows = [r + [""] * (len(header) - len(r)) for r in rows]
    note = provenance_line(first) if first else "no baseline has run yet"
    return "\n".join([
        "## Baselines",
        f"Ours: {note}. Write-up: {inp.references.get(TASK, {}).get('source', '')}.",
        "",
        table(header, rows),
        "",
        "Regenerate: `snakemake --cores 4 all` or `dvc repro evaluate_baseline`.",
    ])


def section_per_class(inp: ReportInputs) -> str | None:
    parts = ["## Per-class test results"]
    for model in inp.params["baselines"]["models"]:
        m = inp.metrics(TASK, f"{model}.json")
        if m is None:
            continue
        per_class = m["test"]["per_class"]
        rows = [[name, pct(per_class[name]["precision"]), pct(per_class[name]["recall"]),
                 pct(per_class[name]["f1"]), per_class[name]["support"]] for name in m["test"]["labels"]]
        parts += [f"### `{model}`", "", table(["class", "precision %", "recall %", "F1 %", "support"], rows), "",
                  f"![confusion matrix of {model}](figures/confusion_{model}.png)", ""]
    return "\n".join(parts) if len(parts) > 1 else None


SECTIONS: list[Callable[[ReportInputs], str | None]] = [section_dataset, section_baselines, section_per_class]


def section_provenance(prov: dict) -> str:
    rows = [[k, f"`{v}`"] for k, v in prov.items() if k != "packages"]
    rows += [[f"package `{k}`", v or "not installed"] for k, v in prov["packages"].items()]
    return "\n".join(["## Environment provenance", "", table(["what", "value"], rows), "",
                      "Also in `metrics/provenance.json`, rewritten by every report run."])


def build_report(metrics_dir: str | os.PathLike, references_path: str | os.PathLike, params: dict,
                 prov: dict | None = None) -> str:
    references = yaml.safe_load(Path(references_path).read_text(encoding="utf-8"))
    inp = ReportInputs(Path(metrics_dir), references, params)
    body = [s for s in (section(inp) for section in SECTIONS) if s]
    if prov is not None:
        body.append(section_provenance(prov))
    header = [
        "# zhbench report",
        f"Profile `{params.get('profile', 'default')}`. Every number below is read from the metrics files "
        "under `metrics/`; reference numbers come from the seed write-ups (`config/references.yaml`).",
        "Regenerate the whole report: `make run` (Snakemake) or `dvc repro`.",
    ]
    return "\n\n".join(header + body) + "\n"
