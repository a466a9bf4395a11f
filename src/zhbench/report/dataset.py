"""Dataset statistics: the task's splits as the preprocess stage counted them."""
from __future__ import annotations

from zhbench.report.document import Section, Table
from zhbench.report.inputs import ReportInputs, not_run, num, ours_line, regenerate
from zhbench.workflow import commands


def section_dataset(inp: ReportInputs) -> Section:
    sec = Section("dataset", "Dataset statistics")
    stats = inp.metrics(inp.task, "dataset_stats.json")
    cmd = commands.dataset_stats(inp.task)
    if stats is None:
        sec.blocks.append(not_run("dataset statistics", cmd))
        return sec
    rows = []
    for split, s in stats["splits"].items():
        counts = s["class_counts"].values()
        rows.append([split, s["rows"], s["skipped_rows"], s["duplicate_titles"],
                     num(s["char_length"].get("mean"), ".1f"), num(s["char_length"].get("p95"), ".0f"),
                     num(s["token_length"]["word"].get("mean"), ".1f"), min(counts), max(counts)])
    overlap = ", ".join(f"{k}: {v}" for k, v in stats["overlap"].items())
    sec.blocks += [
        f"News titles, {len(stats['labels'])} classes ({', '.join(stats['labels'])}); "
        f"{ours_line(stats.get('profile', inp.profile), stats.get('variant', inp.variant))}.",
        Table("tbl-dataset", ["split", "rows", "skipped", "duplicate titles", "mean chars", "p95 chars",
                              "mean words", "min class", "max class"], rows),
        f"Titles shared between splits: {overlap}.",
        regenerate(cmd),
    ]
    return sec
