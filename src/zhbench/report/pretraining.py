"""Self-supervised pre-training: each objective's held-out scores, and the same fine-tuning from
random weights beside the one from the pretrain stage's checkpoint."""
from __future__ import annotations

from zhbench import layout
from zhbench.report.document import Fenced, Section, Table
from zhbench.report.inputs import ReportInputs, delta_pp, duration, not_run, num, pct, regenerate, step_time
from zhbench.workflow import commands


# The held-out scores of each objective: (column, metric key). The token-level task is the one the
# family is named for; a sentence-level or auxiliary task only where the family has one.
TOKEN_TASKS = (("MLM", "mlm_eval_acc"), ("RTD", "rtd_eval_acc"), ("PLM", "plm_eval_acc"), ("span", "span_eval_acc"))
SENTENCE_TASKS = (("SOP", "sop_eval_acc"), ("NSP", "nsp_eval_acc"), ("POS", "pos_eval_acc"))


def _first_score(m: dict, tasks: tuple) -> str:
    for label, key in tasks:
        if m.get(key) is not None:
            return f"{pct(m[key])} ({label})"
    return "—"


def section_pretraining(inp: ReportInputs) -> Section:
    sec = Section("pretraining", "Self-supervised pre-training (write-up 002's MLM/SOP table)")
    families = list((inp.params.get("pretrain") or {}).get("families") or [])
    cmd = commands.pretraining(inp.task, families)
    if not families:
        sec.blocks.append("Pre-training is off in this profile (`pretrain.families: []`).")
        return sec
    found = {f: inp.metrics(inp.task, "pretrain", f"{f}.json") for f in families}
    if not any(found.values()):
        sec.blocks.append(not_run("pre-training metrics", cmd))
        return sec
    pre = inp.params.get("pretrain", {})
    rows, times = [], []
    for family, m in found.items():
        if m is None:
            rows.append([f"`{family}`", "not run"] + ["—"] * 5)
            continue
        rows.append([f"`{family}`", m["objective"], _first_score(m, TOKEN_TASKS), _first_score(m, SENTENCE_TASKS),
                     num(m["loss_eval"], ".3f"), num((m.get("untrained") or {}).get("loss_eval"), ".3f"), m["steps"]])
        t = inp.metrics(inp.task, "pretrain", f"{family}_timing.json")
        if t:
            times.append([f"`{family}`", t.get("device", "?"), t.get("precision", "?"), step_time(t.get("train_step_time")),
                          duration(t.get("train_total_time"))])
    published = inp.ref("pretraining") or {}
    sec.blocks += [
        Table("tbl-pretraining", ["backbone", "objective", "token task eval acc %", "sentence/aux task eval acc %",
                                  "loss eval", "loss eval untrained", "steps"], rows,
              caption=f"Ours: profile `{inp.profile}`, `{inp.params.get('backbones', {}).get('size', '?')}` backbones, "
                      f"{pre.get('steps', '?')} steps of {pre.get('batch_size', '?')} x {pre.get('max_len', '?')} "
                      "tokens on the corpus stage's text over the task's char vocabulary, scored on its held-out "
                      "documents with the same masks every run (untrained: the same model at step 0)."),
        Fenced("timing", [Table("tbl-pretraining-time", ["backbone", "device", "precision", "step time",
                                                         "training time"], times,
                                caption="Measured on this run's machine.")]),
        Table("tbl-pretraining-published", ["model", "MLM eval acc %", "SOP eval acc %", "training (hours)",
                                            "loss eval"],
              [[r["model"], pct(r["mlm_eval_acc"]), pct(r["sop_eval_acc"]), num(r["training_hours"], "g"),
                num(r["loss_eval"], ".2f")] for r in published.get("rows", [])],
              caption=f"For context only (not ours: base/large models, a large corpus, TPUs): "
                      f"{published.get('source', '')}."),
        _scratch_vs_pretrained(inp, families),
        regenerate(cmd),
    ]
    return sec


def _scratch_vs_pretrained(inp: ReportInputs, families: list[str]) -> Table:
    rows = []
    for family in families:
        scratch = inp.metrics(inp.task, "backbones", "char", f"{family}.json")
        here = inp.metrics(inp.task, "backbones", layout.PRETRAINED_HERE, f"{family}.json")
        acc = [m["test"]["accuracy"] if m else None for m in (scratch, here)]
        dev = [m["dev"]["accuracy"] if m else None for m in (scratch, here)]
        rows.append([f"`{family}`", pct(dev[0]), pct(acc[0]), pct(dev[1]), pct(acc[1]), delta_pp(acc[1], acc[0])])
    return Table("tbl-pretrained-vs-scratch", ["backbone", "from scratch dev %", "from scratch test %",
                                               "pretrained here dev %", "pretrained here test %", "Δ test (pp)"],
                 rows, caption="The same char-level fine-tuning (settings, vocabulary, seed) from random weights and "
                               "from the pretrain stage's checkpoint: the two differ in their starting weights only.")
