"""Dynamic int8 quantization: accuracy, size and (fenced) latency of each variant."""
from __future__ import annotations

from zhbench.layout import WRITEUP_DATASET
from zhbench.report.document import Fenced, Section, Table
from zhbench.report.inputs import ReportInputs, batching_warning, delta_pp, mb, not_run, num, ours_line, pct, regenerate
from zhbench.workflow import commands


def section_quantization(inp: ReportInputs) -> Section:
    sec = Section("quantization", "Quantization (dynamic int8)")
    backbones = inp.params.get("quantize", {}).get("backbones", [])
    cmd = commands.quantization(inp.task, backbones)
    found = {b: inp.metrics(inp.task, "quantize", "char", f"{b}.json") for b in backbones}
    if not any(found.values()):
        sec.blocks.append(not_run("quantization metrics", cmd))
        return sec
    for name, m in found.items():
        if m is None:
            sec.blocks.append(not_run(f"quantization metrics for `{name}`", cmd))
            continue
        ref = inp.ref(WRITEUP_DATASET, "quantize", name) or {}
        trained, base = m["trained"], m.get("base", {})
        acc, agree = trained["test_accuracy"], trained.get("agreement_with_fp32", {})
        sizes, base_sizes = trained["size_bytes"], base.get("size_bytes", {})
        ref_acc = {"fp32": ref.get("fp32_test_accuracy"), "torch_int8": ref.get("int8_test_accuracy")}
        ref_size = {"fp32": ref.get("fp32_bytes"), "torch_int8": ref.get("int8_bytes")}
        rows = []
        for variant, size_key in (("fp32", "fp32_bytes"), ("torch_int8", "torch_int8_bytes"),
                                  ("ort_int8", "ort_int8_bytes")):
            agreement = "100.00" if variant == "fp32" else pct(agree.get(variant))
            rows.append([f"`{variant}`", pct(acc.get(variant)), agreement,
                         mb(sizes.get(size_key)), mb(base_sizes.get(size_key)), pct(ref_acc.get(variant)),
                         mb(ref_size.get(variant)), delta_pp(acc.get(variant), ref_acc.get(variant))])
        sec.blocks += [
            Table(f"tbl-quantize-{name}",
                  ["variant", "test acc %", "agreement with fp32 %", "size MiB (ours, trained)",
                   "size MiB (base config)", "write-up test acc %", "write-up size MiB", "Δ acc vs write-up (pp)"],
                  rows,
                  caption=f"`{m['model']}`, {trained['test_rows']} test rows. "
                          f"Ours: {ours_line(inp.profile, inp.variant)}, "
                          f"a `{trained.get('size', '?')}` backbone trained from scratch; the base-config column is "
                          "the write-up's architecture with random weights (real sizes, accuracy n/a). "
                          f"Write-up: {inp.ref(WRITEUP_DATASET, 'quantize', 'source')} (torch int8 only; it has no ONNX Runtime "
                          "row)."),
        ]
        timing = inp.metrics(inp.task, "quantize", "char", f"{name}_timing.json")
        if timing:
            sec.blocks.append(Fenced("timing", [_quantize_latency_table(name, timing)]))
    sec.blocks.append(regenerate(cmd))
    return sec


def _quantize_latency_table(name: str, timing: dict) -> Table:
    rows = []
    warning = ""
    for which in ("trained", "base"):
        warning = warning or batching_warning({b: {k: v for k, v in row.items() if k in ("fp32", "torch_int8", "ort_int8")}
                                               for b, row in timing.get(which, {}).items()})
        for batch, row in timing.get(which, {}).items():
            rows.append([which, batch.replace("batch_", ""), num(1000 * row["fp32"], ".3f"),
                         num(1000 * row["torch_int8"], ".3f"), num(1000 * row["ort_int8"], ".3f"),
                         num(row.get("torch_int8_speedup"), ".2f"), num(row.get("ort_int8_speedup"), ".2f")])
    return Table(f"tbl-quantize-latency-{name}",
                 ["model", "batch", "fp32 ms/sample", "torch int8 ms/sample", "ORT int8 ms/sample",
                  "torch int8 speed-up ×", "ORT int8 speed-up ×"], rows,
                 caption=f"Measured on {timing.get('device', '?')}, {timing.get('threads', '?')} threads, sequence "
                         f"length {timing.get('seq_len', '?')}; changes run to run. "
                         "The write-up gives no int8 latency." + warning)
