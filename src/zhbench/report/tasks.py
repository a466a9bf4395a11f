"""The other tasks: NER (BERT+CRF) and LCQMC sentence-pair matching."""
from __future__ import annotations

from zhbench.report.document import Heading, Section, Table
from zhbench.report.inputs import ReportInputs, delta_pp, not_run, num, pct, regenerate
from zhbench.workflow import commands


def section_ner(inp: ReportInputs) -> Section:
    sec = Section("ner", "NER (BERT+CRF)")
    variants = inp.params.get("ner", {}).get("variants", [])
    cmd = commands.ner(variants)
    found = {v: inp.metrics("ner", f"{v}.json") for v in variants}
    if not any(found.values()):
        sec.blocks.append(not_run("NER metrics", cmd))
        return sec
    rows = []
    for variant, m in found.items():
        ref = inp.ref("ner", variant) or {}
        if m is None:
            rows.append([f"`{variant}`", "not run"] + ["—"] * 9)
            continue
        rows.append([f"`{variant}`", f"{m['train_split']} → {m['eval_split']}", m["train_sentences"],
                     m["eval_sentences"], pct(m["precision"]), pct(m["recall"]), pct(m["f1"]), num(m["loss"], ".4f"),
                     f"{ref.get('dataset', '—')}: {pct(ref.get('precision'))} / {pct(ref.get('recall'))} / "
                     f"{pct(ref.get('f1'))}", num(ref.get("loss"), ".4f"), delta_pp(m["f1"], ref.get("f1"))])
    first = next(m for m in found.values() if m)
    sec.blocks += [
        Table("tbl-ner", ["variant", "train → eval split", "train sentences", "eval sentences", "precision %",
                          "recall %", "F1 %", "loss", "write-up P / R / F1 %", "write-up loss", "Δ F1 (pp)"], rows,
              caption=f"Entity-level micro scores (the write-up's valid_acc / valid_recall / valid_f1). Ours: profile "
                      f"`{inp.profile}`, model `{first['model']}`, {first['epochs']} epoch(s) (the model names "
                      "what the encoder started from); the write-up fine-tunes bert-base-chinese for 5 epochs. "
                      "`pd1998-devtest` is People's Daily **1998**, trained on its dev split and scored on its test split; the write-up's is "
                      "People's Daily **2014** (229k training sentences). Losses are on different scales (ours: mean "
                      "CRF NLL per window)."),
    ]
    for variant, m in found.items():
        if m is not None:
            sec.blocks += [Heading(f"Per-entity F1: `{variant}`"), _entity_table(inp, variant, m)]
    sec.blocks.append(regenerate(cmd))
    return sec


def _entity_table(inp: ReportInputs, variant: str, m: dict) -> Table:
    ref = inp.ref("ner", variant) or {}
    ref_f1 = ref.get("per_entity_f1", {})
    per = m["per_entity"]
    rows = [[name, pct(per[name]["f1"]), per[name]["support"], pct(ref_f1.get(name)),
             delta_pp(per[name]["f1"], ref_f1.get(name))] for name in m["entity_order"]]
    rows += [[name, "not annotated in our data", "—", pct(f1), "—"] for name, f1 in ref_f1.items() if name not in per]
    rows.append(["Overall (mean of types)", pct(m["overall_macro_f1"]), m["support"], "—", "—"])
    rows.append(["Overall@Macro as printed (= micro F1)", pct(m["f1"]), m["support"], pct(ref.get("overall")),
                 delta_pp(m["f1"], ref.get("overall"))])
    return Table(f"tbl-ner-entities-{variant}", ["entity", "ours F1 %", "support", "write-up F1 %", "Δ (pp)"], rows,
                 caption=f"`{m['variant']}` ({m['eval_split']} split). Write-up: {ref.get('source', '')}. Its "
                         "\"Overall@Macro\" row equals its micro F1, not the mean of its rows, so it is compared "
                         "with our micro F1.")


def section_lcqmc(inp: ReportInputs) -> Section:
    sec = Section("lcqmc", "LCQMC sentence-pair matching")
    names = inp.params.get("pair", {}).get("backbones", [])
    cmd = commands.lcqmc(names)
    found = {b: inp.metrics("lcqmc", f"{b}.json") for b in names}
    if not any(found.values()):
        sec.blocks.append(not_run("LCQMC metrics", cmd))
        return sec
    rows = []
    for name, m in found.items():
        ref = inp.ref("lcqmc", name) or {}
        if m is None:
            rows.append([f"`{name}`", "not run"] + ["—"] * 10)
            continue
        rows.append([f"`{name}`", f"`{m['model']}`", f"`{m['variant']}`", f"{m['train_split']} → {m['eval_split']}",
                     m["samples"], m["global_step"], pct(m["eval_accuracy"]), num(m["eval_loss"], ".4f"),
                     num(m["train_loss"], ".4f"), pct(ref.get("eval_accuracy")), num(ref.get("eval_loss"), ".2f"),
                     delta_pp(m["eval_accuracy"], ref.get("eval_accuracy"))])
    ref = inp.ref("lcqmc") or {}
    published = ref.get("published", {})
    sec.blocks += [
        Table("tbl-lcqmc", ["backbone", "model", "dataset variant", "train → eval split", "train pairs", "global step",
                            "eval acc %", "eval loss", "train loss", "write-up acc %", "write-up eval loss",
                            "Δ acc (pp)"], rows,
              caption=f"Ours: profile `{inp.profile}`; backbones (the model column names what each started from) "
                      f"trained on LCQMC's dev split and scored on its test split. Write-up: {ref.get('source', '')}, 3,749 steps, pretrained "
                      "checkpoints."),
        Table("tbl-lcqmc-published", ["model", "dev acc %", "test acc %"],
              [[r["model"], num(r["dev"], ".1f"), num(r["test"], ".1f")] for r in published.get("rows", [])],
              caption=f"For context only (not ours): {published.get('source', '')}."),
        regenerate(cmd),
    ]
    return sec
