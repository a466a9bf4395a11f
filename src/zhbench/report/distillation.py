"""Distillation: TextCNN students of each teacher, and the FastBERT speed sweep."""
from __future__ import annotations

from functools import partial

from zhbench import plots
from zhbench.layout import WRITEUP_DATASET
from zhbench.report.document import Fenced, Figure, Heading, Section, Table
from zhbench.report.inputs import (ReportInputs, batching_warning, delta_pp, duration, mb, not_run, num, ours_line,
                                   pct, regenerate)
from zhbench.workflow import commands


def section_distillation(inp: ReportInputs) -> Section:
    sec = Section("distillation", "Distillation (TextCNN and FastBERT)")
    sec.blocks.append(Heading("Teacher → TextCNN"))
    sec.blocks += _textcnn_blocks(inp)
    sec.blocks.append(Heading("FastBERT speed sweep"))
    for name in inp.params.get("fastbert", {}).get("backbones", []):
        sec.blocks += _fastbert_blocks(inp, name)
    return sec


def _textcnn_blocks(inp: ReportInputs) -> list:
    teachers = list(inp.params.get("distill", {}).get("teachers", []))
    cmd = commands.textcnn_students(inp.task, teachers)
    found = {t: (inp.metrics(inp.task, "students", "char", f"textcnn_{t}.json"),
                 inp.metrics(inp.task, "distill", f"char_tsv_{t}.json")) for t in teachers}
    if not any(m or tsv for m, tsv in found.values()):
        return [not_run("distillation metrics", cmd)]
    ref = inp.ref(WRITEUP_DATASET, "distill") or {}
    r_student, r_teacher = ref.get("textcnn", {}), ref.get("teacher", {})
    rows, blocks, notes = [], [], []
    for t, (m, tsv) in found.items():
        if m is None:
            rows.append([f"TextCNN ← `{t}`", "not run", "—", "—", "—", "—", "—", "—"])
            continue
        d = m["distill"]
        rows.append([f"TextCNN ← `{t}`", pct(m["student_test_accuracy"]), pct(m["test"]["macro"]["f1"]),
                     num(m["test"].get("loss"), ".4f"), m["parameters"]["student"], mb(m["size_bytes"]["student"]),
                     pct(r_student.get("test_accuracy")),
                     delta_pp(m["student_test_accuracy"], r_student.get("test_accuracy"))])
        rows.append([f"`{m['teacher']}` (teacher)", pct(m["teacher_test_accuracy"]), "—", "—",
                     m["parameters"]["teacher"] if m["parameters"]["teacher"] is not None else "—",
                     mb(m["size_bytes"]["teacher"]), pct(r_teacher.get("test_accuracy")) if t == "bert" else "—",
                     delta_pp(m["teacher_test_accuracy"], r_teacher.get("test_accuracy")) if t == "bert" else "—"])
        transfer = (f", plus {d['transfer_rows']:,} transfer-set rows the teacher labelled"
                    if d.get("transfer_rows") else "")
        notes.append(f"← `{t}`: best step {d['best_step']} of {d['steps']}{transfer}, agrees with its teacher on "
                     f"{pct(m['agreement_with_teacher'])} % of test titles")
    alpha, temperature = inp.params.get("distill", {}).get("alpha"), inp.params.get("distill", {}).get("temperature")
    blocks.append(Table(
        "tbl-textcnn", ["model", "test acc %", "test macro-F1 %", "test loss", "parameters", "size MiB",
                        "write-up test acc %", "Δ vs write-up (pp)"], rows,
        caption=f"Ours: {ours_line(inp.profile, inp.variant)}; one student per teacher, loss = {alpha}·CE(gold) + "
                f"(1 − {alpha})·T²·KL at T = {temperature}, T²·KL alone on the transfer set (noisy copies of the "
                f"train titles, Tang et al. 2019) ({'; '.join(notes)}). A transformer teacher gives its "
                "logits, any other its log-probabilities. Our teachers are from-scratch mini backbones and the "
                "models of this run, the write-up's a fine-tuned bert-base. "
                f"Write-up: {ref.get('source', '')}."))
    for t, (m, _) in found.items():
        if m is not None:
            blocks.append(Figure(f"figures/confusion_char_textcnn_{t}.png",
                                 f"confusion matrix of the TextCNN student of `{t}` (test)"))
    for t in teachers:
        timing = inp.metrics(inp.task, "students", "char", f"textcnn_{t}_timing.json")
        if timing:
            lat = timing["seconds_per_sample"]
            blocks.append(Fenced("timing", [Table(
                f"tbl-textcnn-latency-{t}", ["batch", "TextCNN ms/sample", f"`{t}` ms/sample", "speed-up ×"],
                [[b.replace("batch_", ""), num(1000 * v["student"], ".3f"), num(1000 * v["teacher"], ".3f"),
                  num(v["speedup"], ".1f")] for b, v in lat.items()],
                caption=f"Student of `{t}`: measured on {timing.get('device', '?')}, {timing.get('threads', '?')} "
                        f"threads; training took {duration(timing.get('train_seconds'))} for "
                        f"{timing.get('train_steps', '?')} steps."
                        + batching_warning({b: {"TextCNN": v["student"], "teacher": v["teacher"]}
                                            for b, v in lat.items()}))]))
    return blocks + [regenerate(cmd)]


def _fastbert_blocks(inp: ReportInputs, name: str) -> list:
    cmd = commands.fastbert(inp.task, name)
    m = inp.metrics(inp.task, "fastbert", "char", f"{name}.json")
    if m is None:
        return [not_run(f"FastBERT metrics for `{name}`", cmd)]
    ref = inp.ref(WRITEUP_DATASET, "fastbert") or {}
    runs = ref.get("runs", {})
    ref_by_speed = {run: {float(r["speed"]): r for r in spec["sweep"]} for run, spec in runs.items()}
    ours = {float(r["speed"]): r for r in m["sweep"]}
    speeds = sorted(set(ours) | {s for sweep in ref_by_speed.values() for s in sweep})
    rows = []
    for s in speeds:
        r = ours.get(s)
        row = [f"{s:g}", pct(r["accuracy"]) if r else "not in `fastbert.speeds`",
               num(r["avg_exit_layer"], ".2f") if r else "—", num(r["flops_ratio"], ".3f") if r else "—",
               pct(r.get("agreement_with_speed_0")) if r else "—"]
        row += [pct(ref_by_speed[run][s]["accuracy"]) if s in ref_by_speed[run] else "—" for run in runs]
        rows.append(row)
    blocks: list = [Table(
        f"tbl-fastbert-{name}",
        ["speed", "test acc %", "mean exit layer", "FLOPs vs full", "agreement with speed 0 %"]
        + [f"{runs[run]['label']} acc %" for run in runs], rows,
        caption=f"`{m['model']}` ({m['num_layers']} layers, {m['test_rows']} test rows), self-distilled for "
                f"{m['stage1_steps']} steps. Ours: {ours_line(inp.profile, inp.variant)}, from-scratch teacher. "
                f"Write-up: {ref.get('source', '')}.")]
    timing = inp.metrics(inp.task, "fastbert", "char", f"{name}_timing.json")
    curves = [plots.SpeedCurve(f"ours ({m['model']})", [float(r["speed"]) for r in m["sweep"]],
                               [r["accuracy"] for r in m["sweep"]],
                               [_speedup(timing, r["speed"]) for r in m["sweep"]], ours=True)]
    curves += [plots.SpeedCurve(spec["label"], [float(r["speed"]) for r in spec["sweep"]],
                                [r["accuracy"] for r in spec["sweep"]],
                                [r["time_per_record"] and spec["sweep"][0]["time_per_record"] / r["time_per_record"]
                                 for r in spec["sweep"]]) for spec in runs.values()]
    fenced: list = []
    if timing:
        t_rows = []
        for s in speeds:
            r = ours.get(s)
            t = timing["time_per_record"].get(_speed_key(timing, s)) if r else None
            row = [f"{s:g}", num(None if t is None else 1000 * t, ".2f"), num(_speedup(timing, s), ".2f")]
            for run in runs:
                rr = ref_by_speed[run].get(s)
                row += [num(1000 * rr["time_per_record"], ".1f") if rr else "—",
                        num(rr["speedup"], ".2f") if rr and rr.get("speedup") is not None else "—"]
            t_rows.append(row)
        header = ["speed", "ours ms/record", "ours speed-up ×"]
        for run in runs:
            header += [f"{runs[run]['label']} ms/record", f"{runs[run]['label']} speed-up × (as stated)"]
        fenced.append(Table(f"tbl-fastbert-speed-{name}", header, t_rows,
                            caption=f"Batch 1, each record at its own length; ours on {timing.get('device', '?')}, "
                                    f"{timing.get('threads', '?')} threads. The write-up's WoBERT speed-up at "
                                    "speed 1 is stated as 5.64×, though its own times give 0.0375/0.0062 = 6.05×."))
    fenced.append(Figure(f"figures/fastbert_speed_{name}.png",
                         f"FastBERT ({name}): accuracy and speed-up against speed",
                         partial(plots.plot_fastbert_speed, curves)))
    return blocks + [Fenced("timing", fenced), regenerate(cmd)]


def _speed_key(timing: dict, speed: float) -> str | None:
    for key in timing.get("time_per_record", {}):
        if float(key) == float(speed):
            return key
    return None


def _speedup(timing: dict | None, speed: float) -> float | None:
    if not timing:
        return None
    key = _speed_key(timing, speed)
    return None if key is None else timing.get("speedup_over_speed_0", {}).get(key)
