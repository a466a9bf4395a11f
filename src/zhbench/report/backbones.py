"""The char- and word-level backbones, the granularity comparison and the training curves."""
from __future__ import annotations

from functools import partial

from zhbench import layout, plots
from zhbench.layout import WRITEUP_DATASET
from zhbench.report.document import Figure, Heading, Section, Table
from zhbench.report.inputs import ReportInputs, backbone_names, delta_pp, not_run, num, ours_line, pct, regenerate
from zhbench.workflow import commands


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
    cmd = commands.backbones(inp.task, grans)
    size = inp.params.get("backbones", {}).get("size", "?")
    if not any(inp.metrics(inp.task, "backbones", g, f"{b}.json") for g, names in grans.items() for b in names):
        sec.blocks.append(not_run("backbone metrics", cmd))
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
    sec.blocks += [section_granularity_table(inp), regenerate(cmd)]
    sec.blocks += _curve_figures(inp)
    sec.blocks.append(Heading("Confusion matrices (test)"))
    sec.blocks += [Figure(f"figures/confusion_{g}_{b}.png", f"confusion matrix of {g}/{b} (test)")
                   for g, names in grans.items() for b in names
                   if inp.metrics(inp.task, "backbones", g, f"{b}.json") is not None]
    return sec


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
    shown = 0
    for granularity, names in backbone_names(inp).items():
        for name in names:
            curves = inp.metrics_dir / inp.task / "curves" / granularity / name
            figure = f"figures/curves_{granularity}_{name}.png"
            if (curves / "train.csv").is_file() or (curves / "eval.csv").is_file():
                title = f"{granularity}/{name}: training curves"
                blocks.append(Figure(figure, f"training curves of {granularity}/{name}",
                                     partial(plots.plot_training_curves, curves, title)))
                shown += 1
    if not shown:
        blocks.append(f"No training curves under `metrics/{inp.task}/curves/` yet (written by `train_backbone`).")
    return blocks
