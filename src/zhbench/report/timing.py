"""The sections built from measured times: accuracy against latency for every classifier, cached
against uncached feature loading, and training speed per device."""
from __future__ import annotations

from functools import partial

from zhbench import frontier, layout, plots
from zhbench.report.document import Fenced, Figure, Section, Table
from zhbench.report.inputs import (ReportInputs, backbone_names, duration, not_run, num, ours_line, pct, regenerate,
                                   step_time)
from zhbench.workflow import commands


def _family(model: str) -> str:
    first = model.split("/", 1)[0]
    if first in layout.GRANULARITIES:
        return f"backbone ({first})"
    return {"quantized": "int8", "students": "TextCNN", "ensemble": "ensemble"}.get(first, "baseline")


def frontier_points(inp: ReportInputs) -> tuple[dict[str, list], dict | None]:
    """{batch: [(plots.LatencyPoint, frontier.Point)]} from the latency stage's one measurement of
    every served model, with each model's test accuracy from its evaluation; and the timing record."""
    t = inp.metrics(inp.task, "latency_timing.json")
    if not t:
        return {}, None
    points: dict[str, list] = {}
    for model, per_batch in t["seconds_per_sample"].items():
        acc = layout.test_accuracy(inp.metrics_dir, inp.task, model)
        if acc is None:
            continue
        for batch, seconds in per_batch.items():
            ms = 1000 * seconds
            points.setdefault(batch, []).append((plots.LatencyPoint(_family(model), model, ms, acc, batch),
                                                 frontier.Point(model, acc, ms)))
    return points, t


def section_accuracy_latency(inp: ReportInputs) -> Section:
    sec = Section("accuracy-latency", "Accuracy vs latency (every classifier)")
    cmd = commands.latency(inp.task)
    points, t = frontier_points(inp)
    if not points:
        sec.blocks.append(not_run("latency measurement", cmd))
        return sec
    fronts = {b: frontier.pareto_front([f for _, f in pts]) for b, pts in points.items()}
    names = sorted({f.name for pts in points.values() for _, f in pts})
    by = {b: {f.name: f for _, f in pts} for b, pts in points.items()}
    batches = sorted(points, key=lambda b: int(b.replace("batch_", "")))
    rows = []
    for name in sorted(names, key=lambda n: -by[batches[0]][n].accuracy if n in by[batches[0]] else 0):
        row = [_family(name), f"`{name}`", pct(next(by[b][name].accuracy for b in batches if name in by[b]))]
        for b in batches:
            f = by[b].get(name)
            row += [num(f.ms, ".3f") if f else "—", "yes" if f and f in fronts[b] else ""]
        rows.append(row)
    header = ["family", "classifier", "test acc %"]
    for b in batches:
        header += [f"ms/sample {b.replace('_', ' ')}", f"on the front ({b.replace('_', ' ')})"]
    budget_rows = []
    for budget in frontier.BUDGETS_MS:
        cells = [f"≤ {budget:g} ms"]
        for b in batches:
            best = frontier.best_within([f for _, f in points[b]], budget)
            cells.append(f"`{best.name}` ({pct(best.accuracy)} %)" if best else "none")
        budget_rows.append(cells)
    draw = partial(plots.plot_accuracy_vs_latency, {b.replace("_", " "): [p for p, _ in points[b]] for b in batches},
                   fronts={b.replace("_", " "): [next(p for p, f in points[b] if f == front) for front in fronts[b]]
                           for b in batches})
    cpu = t.get("cpu", {})
    flags = ", ".join(k for k, v in (cpu.get("flags") or {}).items() if v) or "?"
    sec.blocks.append(Fenced("timing", [
        Table("tbl-latency", header, rows,
              caption=f"Every served classifier timed by the latency stage, side by side and alone on "
                      f"{t.get('device', '?')} ({flags}), {t.get('threads', '?')} thread(s), raw test titles through "
                      "the service's own segmentation; each keeps its fastest batch. A classifier is on the front "
                      "when no other is both as accurate and as fast. Test accuracy comes from its evaluation."),
        Table("tbl-latency-budget", ["latency budget per title"] + [f"best at {b.replace('_', ' ')}" for b in batches],
              budget_rows, caption="The most accurate classifier within each budget, by this run's measurement."),
        Figure("figures/accuracy_vs_latency.png", "test accuracy against latency for every classifier, with the Pareto front",
               draw),
    ]))
    sec.blocks.append(regenerate(cmd))
    return sec


def section_cached_timing(inp: ReportInputs) -> Section:
    sec = Section("cached-timing", "Cached vs uncached feature loading")
    rows = []
    for granularity, names in backbone_names(inp).items():
        for name in names:
            t = inp.metrics(inp.task, "backbones", granularity, f"{name}_timing.json")
            if not t:
                continue
            for split in ("dev", "test"):
                s = t[split]
                unc, cac = s["feature_load_seconds_uncached"], s["feature_load_seconds_cached"]
                rows.append([f"`{granularity}/{name}`", split, s["samples"], num(unc, ".4f"), num(cac, ".4f"),
                             num(unc / cac if cac else None, ".1f"), num(s["inference_seconds"], ".3f")])
    ref = inp.ref("cached_features") or {}
    ref_rows = [[model, ref.get("samples", "—"), num(r["first"]["train_seconds"], ".2f"),
                 num(r["first"]["eval_seconds"], ".2f"), num(r["cached"]["train_seconds"], ".2f"),
                 num(r["cached"]["eval_seconds"], ".2f"), num(r["eval"]["acc"], ".4f"), num(r["eval"]["f1"], ".4f"),
                 num(r["eval"]["acc_and_f1"], ".4f")] for model, r in ref.get("models", {}).items()]
    blocks: list = []
    if rows:
        blocks.append(Table("tbl-cache", ["backbone", "split", "samples", "uncached load s", "cached load s",
                                          "cache speed-up ×", "inference s"], rows,
                            caption=f"Ours: {ours_line(inp.profile, inp.variant)}; feature loading (tokenise + "
                                    "encode, or read the cache) timed alone, on the same split in one run."))
    else:
        blocks.append(not_run("backbone timing files", commands.backbone_timing(inp.task, list(backbone_names(inp)))))
    blocks.append(Table("tbl-cache-ref", ["write-up model", "samples", "train s (first)", "eval s (first)",
                                          "train s (cached)", "eval s (cached)", "eval acc", "eval F1",
                                          "acc_and_f1"], ref_rows,
                        caption=f"Write-up: {ref.get('source', '')}. Its times are whole train / eval runs (the "
                                "cache saves feature building; eval quality was identical with and without it), ours "
                                "isolate the load itself, so compare the ratios only."))
    sec.blocks = [Fenced("timing", blocks)]
    return sec


def section_device_speed(inp: ReportInputs) -> Section:
    sec = Section("device-speed", "Device speed")
    rows = []
    for granularity, names in backbone_names(inp).items():
        for name in names:
            t = inp.metrics(inp.task, "backbones", granularity, f"{name}_train_timing.json")
            if t:
                rows.append(_speed_row(f"{inp.task} titles `{granularity}/{name}`", t))
    for variant in inp.params.get("ner", {}).get("variants", []):
        t = inp.metrics("ner", f"{variant}_timing.json")
        if t:
            rows.append(_speed_row(f"NER `{variant}`", t))
    for name in inp.params.get("pair", {}).get("backbones", []):
        t = inp.metrics("lcqmc", f"{name}_timing.json")
        if t:
            rows.append(_speed_row(f"LCQMC `{name}`", t))
    ref = inp.ref("device_speed") or {}
    ref_rows = [[r["dataset"], r["device"], step_time(r["train_step_time"]), duration(r["train_epoch_time"]),
                 step_time(r["valid_step_time"]), duration(r["valid_epoch_time"])] for r in ref.get("rows", [])]
    blocks: list = []
    if rows:
        blocks.append(Table("tbl-device", ["run", "device", "threads", "train_step_time", "train_epoch_time",
                                           "valid_step_time", "valid_epoch_time"], rows,
                            caption=f"Ours: {ours_line(inp.profile, inp.variant)} (the NER and LCQMC rows use their "
                                    "own datasets); CPU, mini backbones, our batch sizes."))
    else:
        blocks.append(not_run("training timing files", commands.training_timing()))
    blocks.append(Table("tbl-device-ref", ["write-up dataset", "device", "train_step_time", "train_epoch_time",
                                           "valid_step_time", "valid_epoch_time"], ref_rows,
                        caption=f"Write-up: {ref.get('source', '')} (GPU, base-size model)."))
    sec.blocks = [Fenced("timing", blocks)]
    return sec


def _speed_row(label: str, t: dict) -> list:
    return [label, t.get("device", "?"), t.get("threads", "—"), step_time(t.get("train_step_time")),
            duration(t.get("train_epoch_time")), step_time(t.get("valid_step_time")),
            duration(t.get("valid_epoch_time"))]
