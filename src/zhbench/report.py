"""Build reports/report.md and a self-contained reports/report.html from metrics files only.

No number in the report is typed by hand. Each section reads the metrics JSON its stages wrote,
puts the write-up's reference number (config/references.yaml) beside ours, and names the profile,
dataset variant and the command that regenerates it. Metrics that are absent are said to be absent,
with the stage to run; they are never filled in.

Determinism. Quality metrics repeat byte for byte; measured times (`*_timing.json`) and the
environment provenance (git commit, platform) do not. Every block built from them is fenced:

    <!-- timing --> ... <!-- /timing -->            (times, and figures drawn from times)
    <!-- provenance --> ... <!-- /provenance -->    (environment provenance)

`deterministic_part(markdown)` drops the fenced blocks; what is left must be byte-identical across
two clean runs with the same quality metrics (`make reproduce-check` compares exactly that).

One small function per section; each returns a `Section` of blocks (text, tables, figures, fenced
timing blocks) that `render_markdown` and `render_html` turn into the two files.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

import yaml

from zhbench import frontier, layout, plots
from zhbench.io import read_json
from zhbench.layout import WRITEUP_DATASET

SMK = ".venv/bin/snakemake"
DVC = ".venv/bin/dvc"
FENCES = ("timing", "provenance")
_FENCED = re.compile(r"<!-- (timing|provenance) -->\n.*?<!-- /\1 -->\n?", re.S)


# --- blocks ------------------------------------------------------------------------------------------

@dataclass
class Table:
    id: str                 # HTML id, stable: tests look tables up by it
    header: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclass
class Figure:
    path: str               # relative to the report's directory, e.g. "figures/confusion_fasttext_char.png"
    alt: str


@dataclass
class Heading:
    text: str


@dataclass
class Fenced:
    """Blocks that vary run to run (kind: timing | provenance); excluded from the determinism check."""
    kind: str
    blocks: list


Block = Union[str, Table, Figure, Heading, Fenced]


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)


# --- inputs and formatting ---------------------------------------------------------------------------

@dataclass
class ReportInputs:
    metrics_dir: Path
    references: dict
    params: dict
    figures_dir: Path | None = None   # where the report draws its own figures; None: draw none

    def metrics(self, *parts: str) -> dict | None:
        path = self.metrics_dir.joinpath(*parts)
        return read_json(path) if path.is_file() else None

    def ref(self, *keys: str) -> Any:
        """A write-up reference number; none for data that is not the write-ups' own."""
        if keys and keys[0] == WRITEUP_DATASET and not layout.on_writeup_data(self.params):
            return None
        node: Any = self.references
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    @property
    def profile(self) -> str:
        return str(self.params.get("profile", "default"))

    @property
    def task(self) -> str:
        return layout.task(self.params)

    @property
    def variant(self) -> str:
        return str(self.params.get("data", {}).get("variant", "?"))


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def num(x: float | None, fmt: str = ".4f") -> str:
    return "—" if x is None else format(x, fmt)


def delta_pp(ours: float | None, ref: float | None) -> str:
    return "—" if ours is None or ref is None else f"{100 * (ours - ref):+.2f}"


def step_time(seconds: float | None) -> str:
    """A per-step time like the write-up prints it: 182.0 ms, 1.10 s."""
    if seconds is None:
        return "—"
    return f"{1000 * seconds:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def duration(seconds: float | None) -> str:
    """An epoch time like the write-up prints it: 3.0 s, 1m21s, 2h01m50s."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds >= 0.1 else f"{1000 * seconds:.1f} ms"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def mb(n_bytes: float | None) -> str:
    """Bytes in MiB, the unit of the write-up's `ls` sizes (409169465 B -> 390.2)."""
    return "—" if n_bytes is None else f"{n_bytes / 2**20:.1f}"


def ours_line(profile: str, variant: str) -> str:
    return f"profile `{profile}`, dataset variant `{variant}`"


def targets(prefix: str, names: list[str], suffix: str) -> list[str]:
    """Snakemake targets as one shell brace expansion: prefix{a,b}suffix (plain for a single name)."""
    if len(names) == 1:
        return [f"{prefix}{names[0]}{suffix}"]
    return [f"{prefix}{{{','.join(names)}}}{suffix}"] if names else []


def _dvc_repro(rules: list[str]) -> str:
    """The DVC command for every stage of these rules (generated dvc.yaml: `<rule>` or `<rule>-<wildcards>`)."""
    return f"{DVC} repro --glob " + " ".join(f"'{r}*'" for r in rules) + " report"


def regenerate(snakemake_targets: list[str], dvc_stages: list[str]) -> str:
    return (f"Regenerate: `{SMK} {' '.join(snakemake_targets)} reports/report.md` or "
            f"`{_dvc_repro(dvc_stages)}`.")


def not_run(what: str, snakemake_targets: list[str], dvc_stages: list[str]) -> str:
    return (f"**Not run yet:** no {what} under `metrics/`. Run `{SMK} {' '.join(snakemake_targets)} "
            f"reports/report.md` or `{_dvc_repro(dvc_stages)}`; nothing is shown in its place.")


def backbone_names(inp: ReportInputs) -> dict[str, list[str]]:
    return layout.backbone_runs(inp.params) if "granularities" in inp.params.get("backbones", {}) else {}


# --- sections ----------------------------------------------------------------------------------------

def section_dataset(inp: ReportInputs) -> Section:
    sec = Section("dataset", "Dataset statistics")
    stats = inp.metrics(inp.task, "dataset_stats.json")
    cmd = ([f"metrics/{inp.task}/dataset_stats.json"], ["preprocess"])
    if stats is None:
        sec.blocks.append(not_run("dataset statistics", *cmd))
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
        regenerate(*cmd),
    ]
    return sec


def section_baselines(inp: ReportInputs) -> Section:
    sec = Section("baselines", "Baselines")
    models = inp.params["baselines"]["models"]
    refs = inp.ref(WRITEUP_DATASET, "baselines") or {}
    cmd = (targets(f"metrics/{inp.task}/", models, ".json"), ["evaluate_baseline"])
    found = {m: inp.metrics(inp.task, f"{m}.json") for m in models}
    if not any(found.values()):
        sec.blocks.append(not_run("baseline metrics", *cmd))
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
        regenerate(*cmd),
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
    cmd = ([f"metrics/{inp.task}/ensemble.json"], ["ensemble"])
    m = inp.metrics(inp.task, "ensemble.json")
    blocks: list = [Heading("Ensemble")]
    if m is None:
        return blocks + [not_run("ensemble metrics", *cmd)]
    rows = [[f"`{member}`", num(m["weights"][member], ".1f"), pct(m["member_test_accuracy"][member])]
            for member in m["members"]]
    rows.append(["**ensemble**", "1.0", pct(m["test"]["accuracy"])])
    return blocks + [
        Table("tbl-ensemble", ["member", "weight", "test acc %"], rows,
              caption=f"A weighted average of the members' probabilities; weights (a 0 leaves a member out) chosen "
                      f"on dev only, where the ensemble reaches {pct(m['dev']['accuracy'])} %. "
                      f"Test macro-F1 {pct(m['test']['macro']['f1'])} %."),
        Figure("figures/confusion_ensemble.png", "confusion matrix of the ensemble (test)"),
        regenerate(*cmd),
    ]


def _identical_to_bert(inp: ReportInputs, granularity: str, names: list[str]) -> list[str]:
    """Backbones whose dev and test reports equal bert's exactly (same granularity)."""
    bert = inp.metrics(inp.task, "backbones", granularity, "bert.json")
    if bert is None:
        return []
    same = []
    for name in names:
        m = inp.metrics(inp.task, "backbones", granularity, f"{name}.json")
        if name != "bert" and m is not None and (m["dev"], m["test"]) == (bert["dev"], bert["test"]):
            same.append(name)
    return same


def section_backbones(inp: ReportInputs) -> Section:
    sec = Section("backbones", "Backbones (char and word)")
    grans = backbone_names(inp)
    refs = inp.ref(WRITEUP_DATASET, "backbones") or {}
    cmd = ([t for g, names in grans.items() for t in targets(f"metrics/{inp.task}/backbones/{g}/", names, ".json")],
           ["evaluate_backbone"])
    size = inp.params.get("backbones", {}).get("size", "?")
    if not any(inp.metrics(inp.task, "backbones", g, f"{b}.json") for g, names in grans.items() for b in names):
        sec.blocks.append(not_run("backbone metrics", *cmd))
        return sec
    for granularity, names in grans.items():
        if granularity == layout.PRETRAINED_HERE:  # the pretraining section sets them beside the from-scratch ones
            continue
        rows = []
        for name in names:
            m = inp.metrics(inp.task, "backbones", granularity, f"{name}.json")
            ref = refs.get(name, {}) if granularity == "char" else {}
            if m is None:
                rows.append([f"`{name}`", "not run", "—", "—", "—", "—", pct(ref.get("test_accuracy")),
                             num(ref.get("test_loss"), ".2f"), "—"])
                continue
            rows.append([f"`{name}`", m.get("size", size), m.get("parameters", "—"), pct(m["dev"]["accuracy"]),
                         pct(m["test"]["accuracy"]), num(m["test"].get("loss"), ".4f"),
                         pct(ref.get("test_accuracy")), num(ref.get("test_loss"), ".2f"),
                         delta_pp(m["test"]["accuracy"], ref.get("test_accuracy"))])
        ref_note = (f"Write-up: {inp.ref(WRITEUP_DATASET, 'source')}, pretrained base checkpoints fine-tuned on characters."
                    if granularity == "char" else
                    "The write-up's word-level models (WoBERT, WoNEZHA) ran on documents, not titles: see the "
                    "granularity table below, not this one.")
        sec.blocks += [
            Heading(f"{granularity}-level backbones"),
            Table(f"tbl-backbones-{granularity}",
                  ["backbone", "size", "parameters", "dev acc %", "test acc %", "test loss", "write-up test acc %",
                   "write-up test loss", "Δ vs write-up (pp)"], rows,
                  caption=f"Ours: {ours_line(inp.profile, inp.variant)}, `{granularity}` tokens, `{size}` backbones "
                          f"trained from random weights on our vocabulary, or fine-tuned from the checkpoint `pretrained:` "
                          f"names (the pre-training section holds those pre-trained here). {ref_note}"),
        ]
        same = _identical_to_bert(inp, granularity, names)
        if same:
            sec.blocks.append(
                f"{', '.join(f'`{n}`' for n in same)} reproduce `bert`'s {granularity}-level numbers exactly: at "
                f"`{size}` size they are the same BERT architecture trained from scratch with the same seed, and "
                "what tells them apart in the write-up (their pretraining) is absent here.")
    sec.blocks += [section_granularity_table(inp), regenerate(*cmd)]
    sec.blocks += _curve_figures(inp)
    sec.blocks.append(Heading("Confusion matrices (test)"))
    sec.blocks += [Figure(f"figures/confusion_{g}_{b}.png", f"confusion matrix of {g}/{b} (test)")
                   for g, names in grans.items() for b in names
                   if inp.metrics(inp.task, "backbones", g, f"{b}.json") is not None]
    return sec


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
    cmd = (targets(f"metrics/{inp.task}/pretrain/", families, ".json")
           + targets(f"metrics/{inp.task}/backbones/{layout.PRETRAINED_HERE}/", families, ".json"),
           ["pretrain", "evaluate_backbone"])
    if not families:
        sec.blocks.append("Pre-training is off in this profile (`pretrain.families: []`).")
        return sec
    found = {f: inp.metrics(inp.task, "pretrain", f"{f}.json") for f in families}
    if not any(found.values()):
        sec.blocks.append(not_run("pre-training metrics", *cmd))
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
        regenerate(*cmd),
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


def section_granularity_table(inp: ReportInputs) -> Table:
    """Char vs word: ours per backbone beside the write-up's word-vocabulary analogue on both corpora."""
    ref = inp.ref(WRITEUP_DATASET, "granularity") or {}
    models, analogue = ref.get("models", {}), ref.get("analogue", {})
    grans = backbone_names(inp)
    rows, shown = [], set()
    for name in [b for b in grans.get("word", []) if b in grans.get("char", [])]:
        char = inp.metrics(inp.task, "backbones", "char", f"{name}.json")
        word = inp.metrics(inp.task, "backbones", "word", f"{name}.json")
        c_acc = char["test"]["accuracy"] if char else None
        w_acc = word["test"]["accuracy"] if word else None
        other = analogue.get(name)
        shown.add(other)
        r = models.get(other, {})
        rc, rw = r.get("char", {}).get("accuracy"), r.get("word", {}).get("accuracy")
        rows.append([f"`{name}`", pct(c_acc), pct(w_acc), delta_pp(w_acc, c_acc), other or "—", pct(rc), pct(rw),
                     delta_pp(rw, rc)])
    for other in models:  # the write-up's other models, for context
        if other not in shown:
            r = models[other]
            rows.append(["—", "—", "—", "—", other, pct(r["char"]["accuracy"]), pct(r["word"]["accuracy"]),
                         delta_pp(r["word"]["accuracy"], r["char"]["accuracy"])])
    return Table("tbl-granularity",
                 ["our backbone", "ours char acc %", "ours word acc %", "ours word − char (pp)", "write-up model",
                  "write-up char acc %", "write-up word acc %", "write-up word − char (pp)"], rows,
                 caption=f"Char vs word granularity. Ours: {ours_line(inp.profile, inp.variant)}, news titles, "
                         f"from-scratch backbones with a char or a word vocabulary. Write-up: {ref.get('source', '')}; "
                         "its char/word switch segments the corpus for a fixed pretrained vocabulary, ours changes "
                         "the vocabulary too, so compare the direction of the gap, not its size.")


def _curve_figures(inp: ReportInputs) -> list:
    blocks: list = [Heading("Training curves")]
    drawn = 0
    for granularity, names in backbone_names(inp).items():
        for name in names:
            curves = inp.metrics_dir / inp.task / "curves" / granularity / name
            figure = f"figures/curves_{granularity}_{name}.png"
            if inp.figures_dir is not None:
                plots.plot_training_curves(curves, f"{granularity}/{name}: training curves",
                                           inp.figures_dir / Path(figure).name)
            if (curves / "train.csv").is_file() or (curves / "eval.csv").is_file():
                blocks.append(Figure(figure, f"training curves of {granularity}/{name}"))
                drawn += 1
    if not drawn:
        blocks.append(f"No training curves under `metrics/{inp.task}/curves/` yet (written by `train_backbone`).")
    return blocks


def section_quantization(inp: ReportInputs) -> Section:
    sec = Section("quantization", "Quantization (dynamic int8)")
    backbones = inp.params.get("quantize", {}).get("backbones", [])
    cmd = (targets(f"metrics/{inp.task}/quantize/char/", backbones, ".json"), ["quantize"])
    found = {b: inp.metrics(inp.task, "quantize", "char", f"{b}.json") for b in backbones}
    if not any(found.values()):
        sec.blocks.append(not_run("quantization metrics", *cmd))
        return sec
    for name, m in found.items():
        if m is None:
            sec.blocks.append(not_run(f"quantization metrics for `{name}`", *cmd))
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
    sec.blocks.append(regenerate(*cmd))
    return sec


def batching_warning(per_sample: dict[str, dict[str, float]]) -> str:
    """A caption warning when a model's time per sample grows with the batch size ({"batch_1":
    {model: s}, "batch_64": {model: s}}). Batching only amortises fixed costs, so a larger batch
    is as fast per sample or faster; a slower one means the CPU was shared while it measured."""
    batches = sorted(per_sample, key=lambda b: int(b.replace("batch_", "")))
    grows = sorted({model for small, large in zip(batches, batches[1:])
                    for model, t in per_sample[large].items()
                    if isinstance(t, (int, float)) and isinstance(per_sample[small].get(model), (int, float))
                    and t > 1.05 * per_sample[small][model]})
    if not grows:
        return ""
    return (f" **Not a result: time per sample grows with the batch size for {', '.join(grows)}**, which batching "
            "cannot do on an idle machine: other work shared the CPU while this was measured.")


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
    cmd = ([f"metrics/{inp.task}/students/char/textcnn_{t}.json" for t in teachers], ["distill_tsv", "train_student"])
    found = {t: (inp.metrics(inp.task, "students", "char", f"textcnn_{t}.json"),
                 inp.metrics(inp.task, "distill", f"char_tsv_{t}.json")) for t in teachers}
    if not any(m or tsv for m, tsv in found.values()):
        return [not_run("distillation metrics", *cmd)]
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
        notes.append(f"← `{t}`: best step {d['best_step']} of {d['steps']}, agrees with its teacher on "
                     f"{pct(m['agreement_with_teacher'])} % of test titles")
    alpha, temperature = inp.params.get("distill", {}).get("alpha"), inp.params.get("distill", {}).get("temperature")
    blocks.append(Table(
        "tbl-textcnn", ["model", "test acc %", "test macro-F1 %", "test loss", "parameters", "size MiB",
                        "write-up test acc %", "Δ vs write-up (pp)"], rows,
        caption=f"Ours: {ours_line(inp.profile, inp.variant)}; one student per teacher, loss = {alpha}·CE(gold) + "
                f"(1 − {alpha})·T²·KL at T = {temperature} ({'; '.join(notes)}). A transformer teacher gives its "
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
    return blocks + [regenerate(*cmd)]


def _fastbert_blocks(inp: ReportInputs, name: str) -> list:
    cmd = ([f"metrics/{inp.task}/fastbert/char/{name}.json"], ["fastbert"])
    m = inp.metrics(inp.task, "fastbert", "char", f"{name}.json")
    if m is None:
        return [not_run(f"FastBERT metrics for `{name}`", *cmd)]
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
    if inp.figures_dir is not None:
        plots.plot_fastbert_speed(curves, inp.figures_dir / f"fastbert_speed_{name}.png")
    fenced.append(Figure(f"figures/fastbert_speed_{name}.png",
                         f"FastBERT ({name}): accuracy and speed-up against speed"))
    return blocks + [Fenced("timing", fenced), regenerate(*cmd)]


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
    cmd = ([f"metrics/{inp.task}/latency_timing.json"], ["latency"])
    points, t = frontier_points(inp)
    if not points:
        sec.blocks.append(not_run("latency measurement", *cmd))
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
    if inp.figures_dir is not None:
        plots.plot_accuracy_vs_latency(
            {b.replace("_", " "): [p for p, _ in points[b]] for b in batches}, inp.figures_dir / "accuracy_vs_latency.png",
            {b.replace("_", " "): [next(p for p, f in points[b] if f == front) for front in fronts[b]] for b in batches})
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
        Figure("figures/accuracy_vs_latency.png", "test accuracy against latency for every classifier, with the Pareto front"),
    ]))
    sec.blocks.append(regenerate(*cmd))
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
        blocks.append(not_run("backbone timing files", [f"metrics/{inp.task}/backbones/char/bert_timing.json"],
                              [f"evaluate_backbone_{g}" for g in backbone_names(inp)]))
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
        blocks.append(not_run("training timing files", ["all"], ["train_backbone", "train_ner", "train_pair"]))
    blocks.append(Table("tbl-device-ref", ["write-up dataset", "device", "train_step_time", "train_epoch_time",
                                           "valid_step_time", "valid_epoch_time"], ref_rows,
                        caption=f"Write-up: {ref.get('source', '')} (GPU, base-size model)."))
    sec.blocks = [Fenced("timing", blocks)]
    return sec


def _speed_row(label: str, t: dict) -> list:
    return [label, t.get("device", "?"), t.get("threads", "—"), step_time(t.get("train_step_time")),
            duration(t.get("train_epoch_time")), step_time(t.get("valid_step_time")),
            duration(t.get("valid_epoch_time"))]


def section_ner(inp: ReportInputs) -> Section:
    sec = Section("ner", "NER (BERT+CRF)")
    variants = inp.params.get("ner", {}).get("variants", [])
    cmd = (targets("metrics/ner/", variants, ".json"), ["evaluate_ner"])
    found = {v: inp.metrics("ner", f"{v}.json") for v in variants}
    if not any(found.values()):
        sec.blocks.append(not_run("NER metrics", *cmd))
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
    sec.blocks.append(regenerate(*cmd))
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
    cmd = (targets("metrics/lcqmc/", names, ".json"), ["evaluate_pair"])
    found = {b: inp.metrics("lcqmc", f"{b}.json") for b in names}
    if not any(found.values()):
        sec.blocks.append(not_run("LCQMC metrics", *cmd))
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
        regenerate(*cmd),
    ]
    return sec


def section_provenance(prov: dict) -> Section:
    rows = [[k, f"`{v}`"] for k, v in prov.items() if k != "packages"]
    rows += [[f"package `{k}`", v or "not installed"] for k, v in prov.get("packages", {}).items()]
    return Section("provenance", "Environment provenance", [Fenced("provenance", [
        Table("tbl-provenance", ["what", "value"], rows),
        "Also in `metrics/provenance.json`, rewritten by every report run.",
    ])])


SECTIONS: list[Callable[[ReportInputs], Section]] = [
    section_dataset, section_baselines, section_backbones, section_pretraining, section_quantization, section_distillation,
    section_accuracy_latency, section_cached_timing, section_device_speed, section_ner, section_lcqmc,
]


# --- rendering ---------------------------------------------------------------------------------------

def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, Heading):
        return f"### {block.text}"
    if isinstance(block, Figure):
        return f"![{block.alt}]({block.path})"
    if isinstance(block, Table):
        lines = [f"*{block.caption}*", ""] if block.caption else []
        lines += ["| " + " | ".join(_md_cell(h) for h in block.header) + " |",
                  "|" + "|".join("---" for _ in block.header) + "|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Fenced):
        inner = "\n\n".join(_md_block(b) for b in block.blocks)
        return f"<!-- {block.kind} -->\n{inner}\n<!-- /{block.kind} -->"
    raise TypeError(f"unknown report block {block!r}")


def render_markdown(title_blocks: list[str], sections: list[Section]) -> str:
    parts = list(title_blocks)
    for sec in sections:
        parts.append(f"## {sec.title}")
        parts += [_md_block(b) for b in sec.blocks]
    return "\n\n".join(parts) + "\n"


def deterministic_part(markdown: str) -> str:
    """The report without its fenced timing and provenance blocks: byte-identical across clean reruns."""
    return _FENCED.sub("", markdown)


def _inline_html(text: str) -> str:
    """The little inline markdown the report uses: `code`, **bold**, *italic*."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<em>\1</em>", out)


def _html_block(block: Block, report_dir: Path) -> str:
    if isinstance(block, str):
        return f"<p>{_inline_html(block)}</p>"
    if isinstance(block, Heading):
        return f"<h3>{_inline_html(block.text)}</h3>"
    if isinstance(block, Figure):
        path = report_dir / block.path
        if not path.is_file():
            return f'<p class="missing">Figure not found: <code>{html.escape(block.path)}</code></p>'
        return (f'<figure><img alt="{html.escape(block.alt)}" src="{plots.png_data_uri(path)}">'
                f"<figcaption>{html.escape(block.alt)}</figcaption></figure>")
    if isinstance(block, Table):
        head = "".join(f"<th>{_inline_html(str(h))}</th>" for h in block.header)
        body = "".join("<tr>" + "".join(f"<td>{_inline_html(str(c))}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        caption = f"<caption>{_inline_html(block.caption)}</caption>" if block.caption else ""
        return f'<table id="{block.id}">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    if isinstance(block, Fenced):
        inner = "\n".join(_html_block(b, report_dir) for b in block.blocks)
        note = ("measured times: they change from run to run" if block.kind == "timing"
                else "environment provenance: changes with machine and commit")
        return f'<div class="{block.kind}"><p class="fence-note">{note}</p>\n{inner}\n</div>'
    raise TypeError(f"unknown report block {block!r}")


CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #aaa; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 7px; text-align: left; }
th { background: #eef; } tbody tr:nth-child(even) { background: #f7f7f7; }
caption { caption-side: top; text-align: left; font-style: italic; padding: 4px 0; max-width: 1100px; }
code { background: #f2f2f2; padding: 0 2px; }
figure { display: inline-block; vertical-align: top; margin: 0.5em 1% 0.5em 0; width: 48%; }
figcaption { font-size: 12px; color: #555; } img { width: 100%; height: auto; border: 1px solid #ddd; }
div.timing, div.provenance { border-left: 4px solid #e9a23b; padding-left: 12px; }
p.fence-note { color: #a66a00; font-size: 12px; margin: 4px 0; }
p.missing { color: #b00; }
nav ul { columns: 2; }
""".strip()


def render_html(title_blocks: list[str], sections: list[Section], report_dir: Path) -> str:
    """A self-contained page: inline CSS, figures as base64 PNG, no script, no external resource."""
    nav = "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in sections)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>zhbench report</title>", f"<style>\n{CSS}\n</style></head><body>",
             f"<h1>{_inline_html(title_blocks[0].lstrip('# '))}</h1>"]
    parts += [f"<p>{_inline_html(t)}</p>" for t in title_blocks[1:]]
    parts.append(f"<nav><ul>{nav}</ul></nav>")
    for sec in sections:
        parts.append(f'<section id="{sec.id}"><h2>{html.escape(sec.title)}</h2>')
        parts += [_html_block(b, report_dir) for b in sec.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --- entry points ------------------------------------------------------------------------------------

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
        "Regenerate the whole report: `make run` (Snakemake) or `.venv/bin/dvc repro`. Blocks fenced as *timing* or "
        "*provenance* hold measured times and environment details, which change from run to run; everything "
        "else repeats byte for byte (`make reproduce-check`).",
    ]


def build_sections(metrics_dir: str | os.PathLike, references_path: str | os.PathLike, params: dict,
                   prov: dict | None = None, figures_dir: str | os.PathLike | None = None) -> list[Section]:
    references = yaml.safe_load(Path(references_path).read_text(encoding="utf-8"))
    inp = ReportInputs(Path(metrics_dir), references, params, Path(figures_dir) if figures_dir else None)
    sections = [section(inp) for section in SECTIONS]
    if not layout.on_writeup_data(params):
        for sec in sections:
            if sec.id in WRITEUP_TASK_SECTIONS:
                _drop_writeup_columns(sec.blocks)
    if prov is not None:
        sections.append(section_provenance(prov))
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
