"""Baselines and their ensemble: ours beside the write-up's test accuracy, per class and per member."""
from __future__ import annotations

from zhbench.layout import WRITEUP_DATASET
from zhbench.report.document import Figure, Heading, Section, Table
from zhbench.report.inputs import ReportInputs, delta_pp, not_run, num, ours_line, pct, regenerate
from zhbench.workflow import commands


def section_baselines(inp: ReportInputs) -> Section:
    sec = Section("baselines", "Baselines")
    models = inp.params["baselines"]["models"]
    refs = inp.ref(WRITEUP_DATASET, "baselines") or {}
    cmd = commands.baselines(inp.task, models)
    found = {m: inp.metrics(inp.task, f"{m}.json") for m in models}
    if not any(found.values()):
        sec.blocks.append(not_run("baseline metrics", cmd))
        return sec
    rows = []
    for model, m in found.items():
        ref = refs.get(model, {}).get("test_accuracy")
        if m is None:
            rows.append([f"`{model}`", "not run", "—", "—", "—", pct(ref), "—", "—"])
            continue
        rows.append([f"`{model}`", m.get("granularity", ""), pct(m["dev"]["accuracy"]), pct(m["test"]["accuracy"]),
                     pct(m["test"]["macro"]["f1"]), pct(ref), delta_pp(m["test"]["accuracy"], ref),
                     f"`{m.get('variant', inp.variant)}`"])
    first = next(m for m in found.values() if m)
    sec.blocks += [
        Table("tbl-baselines", ["model", "granularity", "dev acc %", "test acc %", "test macro-F1 %",
                                "write-up test acc %", "Δ vs write-up (pp)", "dataset variant"], rows,
              caption=f"Ours: {ours_line(first.get('profile', inp.profile), first.get('variant', inp.variant))}. "
                      f"Write-up: {inp.ref(WRITEUP_DATASET, 'source')}. Our train split is smaller than the write-up's "
                      "whenever the variant is not `thucnews10`."),
        regenerate(cmd),
    ]
    for model, m in found.items():
        if m is None:
            continue
        per_class = m["test"]["per_class"]
        sec.blocks += [
            Heading(f"Per-class test results: `{model}`"),
            Table(f"tbl-perclass-{model}", ["class", "precision %", "recall %", "F1 %", "support"],
                  [[name, pct(per_class[name]["precision"]), pct(per_class[name]["recall"]),
                    pct(per_class[name]["f1"]), per_class[name]["support"]] for name in m["test"]["labels"]]),
            Figure(f"figures/confusion_{model}.png", f"confusion matrix of {model} (test)"),
        ]
    sec.blocks += _ensemble_blocks(inp)
    return sec


def _ensemble_blocks(inp: ReportInputs) -> list:
    cmd = commands.ensemble(inp.task)
    m = inp.metrics(inp.task, "ensemble.json")
    blocks: list = [Heading("Ensemble")]
    if m is None:
        return blocks + [not_run("ensemble metrics", cmd)]
    rows = [[f"`{member}`", num(m["weights"][member], ".1f"), pct(m["member_test_accuracy"][member])]
            for member in m["members"]]
    rows.append(["**ensemble**", "1.0", pct(m["test"]["accuracy"])])
    return blocks + [
        Table("tbl-ensemble", ["member", "weight", "test acc %"], rows,
              caption=f"A weighted average of the members' probabilities; weights (a 0 leaves a member out) chosen "
                      f"on dev only, where the ensemble reaches {pct(m['dev']['accuracy'])} %. "
                      f"Test macro-F1 {pct(m['test']['macro']['f1'])} %."),
        Figure("figures/confusion_ensemble.png", "confusion matrix of the ensemble (test)"),
        regenerate(cmd),
    ]
