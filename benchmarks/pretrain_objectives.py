"""Pre-training objectives on this CPU: step time per family (fp32 vs bf16 autocast, one thread)
and a short run per family (loss falls, accuracies rise above chance).

  python benchmarks/pretrain_objectives.py corpus --titles TRAIN_TITLES.txt --out /tmp/title_corpus
  python benchmarks/pretrain_objectives.py step-time --corpus /tmp/title_corpus --out step_time.json
  python benchmarks/pretrain_objectives.py run --corpus /tmp/title_corpus --family bert --out bert.json
  python benchmarks/pretrain_objectives.py summary --results benchmarks/results   # markdown tables

`corpus` turns a `title<TAB>label` file (the TRAINING split) into a pre-training corpus: titles of
one class, in file order, grouped into documents; a title's clauses (split after ： ， ！ ？ ；)
are its sentences, so sentence-order and next-sentence tasks have something to learn; the last
10% of the documents are held out.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from zhbench.devices import cpu_info
from zhbench.pretrain import objective_for
from zhbench.pretrain.corpus import char_tokenizer, read_documents, split_path
from zhbench.pretrain.driver import heldout_batches, pretrain
from zhbench.models.backbones import BACKBONES

CLAUSE_END = re.compile(r"(?<=[：，！？；])")


def make_corpus(titles: Path, out: Path, titles_per_document: int, heldout_share: float) -> None:
    by_label: dict[str, list[str]] = {}
    with open(titles, encoding="utf-8") as f:
        for line in f:
            title, label = line.rstrip("\n").split("\t")
            by_label.setdefault(label, []).append(title)
    documents = []
    for label in sorted(by_label):
        group = by_label[label]
        for start in range(0, len(group), titles_per_document):
            documents.append([c for t in group[start:start + titles_per_document] for c in CLAUSE_END.split(t) if c])
    order = np.random.default_rng(0).permutation(len(documents))
    documents = [documents[i] for i in order]
    n_heldout = max(1, int(len(documents) * heldout_share))
    out.mkdir(parents=True, exist_ok=True)
    for name, docs in (("heldout", documents[:n_heldout]), ("train", documents[n_heldout:])):
        (out / f"{name}.txt").write_text("\n\n".join("\n".join(d) for d in docs) + "\n", encoding="utf-8")
    print(f"{len(documents) - n_heldout} train / {n_heldout} held-out documents -> {out}")


def corpus_tokenizer(corpus: Path):
    return char_tokenizer(s for split in ("train", "heldout") for d in read_documents(split_path(corpus, split)) for s in d)


def step_times(corpus: Path, families: list[str], batch_size: int, max_len: int, steps: int, bf16_steps: int) -> dict:
    """Per family: seconds per optimizer step (forward, backward, AdamW), fp32 and bf16 autocast
    taking turns step by step on the same model, after one warm-up step each (median wall and CPU
    time; bf16 only for the first `bf16_steps`, it is slow on a CPU without bf16 instructions);
    and the collation time per batch."""
    torch.set_num_threads(1)
    tokenizer = corpus_tokenizer(corpus)
    docs = read_documents(split_path(corpus, "train"))
    out = {"device": cpu_info()["model"], "threads": torch.get_num_threads(), "batch_size": batch_size,
           "max_len": max_len, "steps": steps, "bf16_steps": bf16_steps, "load_average_1min": os.getloadavg()[0], "families": {}}
    for family in families:
        objective = objective_for(family, tokenizer, max_len)
        examples = objective.examples(docs)
        full = [e for e in examples if len(e) >= objective.content_len - 8]  # rows of about max_len
        collate = objective.collator(0, pool=examples)
        t0 = time.perf_counter()
        batches = [collate(full[i * batch_size:(i + 1) * batch_size]) for i in range(steps + 1)]
        collate_s = (time.perf_counter() - t0) / len(batches)
        torch.manual_seed(0)
        model = objective.build_model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        wall = {"fp32": [], "bf16": []}
        cpu = {"fp32": [], "bf16": []}
        for i, batch in enumerate(batches):
            for mode in wall:
                if mode == "bf16" and i > bf16_steps:
                    continue
                t0, c0 = time.perf_counter(), time.process_time()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                    loss = model(**batch).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if i:  # step 0 warms up
                    wall[mode].append(time.perf_counter() - t0)
                    cpu[mode].append(time.process_time() - c0)
        # wall time counts the neighbours on a shared machine; with one thread, CPU time is the
        # step's own work
        row = {"collate_s": collate_s, "tokens_per_row": float(batches[0]["input_ids"].shape[1]),
               **{f"{m}_median_s": statistics.median(t) for m, t in wall.items()},
               **{f"{m}_cpu_median_s": statistics.median(t) for m, t in cpu.items()}}
        row["bf16_speedup"] = row["fp32_cpu_median_s"] / row["bf16_cpu_median_s"]
        out["families"][family] = row
        print(family, {k: round(v, 3) for k, v in row.items()}, flush=True)
    return out


def short_run(corpus: Path, family: str, steps: int, batch_size: int, max_len: int, lr: float) -> dict:
    torch.set_num_threads(1)
    tokenizer = corpus_tokenizer(corpus)
    t0 = time.perf_counter()
    run = pretrain(family, corpus, tokenizer, steps=steps, batch_size=batch_size, max_len=max_len, lr=lr, seed=0,
                   eval_batches=8)
    # the metrics before any training: the same held-out batches on the freshly initialised model
    torch.manual_seed(0)
    fresh = run.objective.build_model()
    heldout = run.objective.examples(read_documents(split_path(corpus, "heldout")))
    eval_set = heldout_batches(run.objective, heldout, batch_size, 8, seed=1)  # the driver's batches
    first = run.losses[:10]
    last = run.losses[-10:]
    return {"family": family, "steps": steps, "batch_size": batch_size, "max_len": max_len, "lr": lr,
            "device": cpu_info()["model"], "seconds": time.perf_counter() - t0,
            "train_loss_first10": sum(first) / len(first), "train_loss_last10": sum(last) / len(last),
            "before": run.objective.evaluate(fresh, eval_set), "after": run.metrics,
            "majority_token_acc": majority_token_accuracy(run.objective, eval_set), "losses": run.losses}


def majority_token_accuracy(objective, batches) -> float:
    """The token-prediction accuracy of always answering the most frequent target token: the
    chance level of MLM / PLM / span accuracy (special tokens are never counted)."""
    targets = np.concatenate([b["labels"][b["labels"] >= 0].numpy() for b in batches])
    targets = targets[objective.regular(targets)]
    return float(np.bincount(targets).max() / len(targets))


def summary(results: Path) -> str:
    """Markdown tables of the step-time file and the short runs under `results`."""
    lines = []
    step_file = results / "pretrain_step_time.json"
    if step_file.is_file():
        st = json.loads(step_file.read_text(encoding="utf-8"))
        lines += [f"Step time on {st['device']}, {st['threads']} thread, batch {st['batch_size']} x {st['max_len']} "
                  f"tokens; median of {st['steps']} fp32 and {st['bf16_steps']} bf16-autocast steps after one "
                  f"warm-up each; CPU seconds (wall seconds in brackets: the machine is shared, "
                  f"1-min load average {st['load_average_1min']:.1f} at the start).", "",
                  "| family | fp32 s/step | bf16 s/step | bf16 speed-up | collate s/batch |", "|---|---|---|---|---|"]
        for family, r in st["families"].items():
            lines.append(f"| {family} | {r['fp32_cpu_median_s']:.2f} ({r['fp32_median_s']:.1f}) | "
                         f"{r['bf16_cpu_median_s']:.1f} ({r['bf16_median_s']:.0f}) | {r['bf16_speedup']:.2f}x | "
                         f"{r['collate_s']:.3f} |")
        lines.append("")
    for folder in ("pretrain_200_steps", "pretrain_long"):
        lines += run_table(sorted((results / folder).glob("*.json")))
    return "\n".join(lines) + "\n"


def run_table(runs: list[Path]) -> list[str]:
    lines: list[str] = []
    if runs:
        first = json.loads(runs[0].read_text(encoding="utf-8"))
        lines += [f"{first['steps']} steps, batch {first['batch_size']} x {first['max_len']}, lr {first['lr']}, "
                  "seed 0; train loss = mean of the first / last 10 steps; held-out metrics on the same 8 "
                  "batches before (fresh model) and after training.", "",
                  "| family | train loss | held-out loss | held-out accuracies (before -> after) | "
                  "majority-token acc | s |", "|---|---|---|---|---|---|"]
        for path in runs:
            r = json.loads(path.read_text(encoding="utf-8"))
            accs = ", ".join(f"{k} {r['before'][k]:.3f} -> {v:.3f}" for k, v in r["after"].items() if k != "loss_eval")
            lines.append(f"| {r['family']} | {r['train_loss_first10']:.2f} -> {r['train_loss_last10']:.2f} | "
                         f"{r['before']['loss_eval']:.2f} -> {r['after']['loss_eval']:.2f} | {accs} | "
                         f"{r['majority_token_acc']:.3f} | {r['seconds']:.0f} |")
        lines.append("")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("--titles", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--titles-per-document", type=int, default=16)
    c.add_argument("--heldout-share", type=float, default=0.1)
    s = sub.add_parser("step-time")
    s.add_argument("--corpus", type=Path, required=True)
    s.add_argument("--families", nargs="+", default=list(BACKBONES))
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--max-len", type=int, default=128)
    s.add_argument("--steps", type=int, default=4)
    s.add_argument("--bf16-steps", type=int, default=1)
    s.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--corpus", type=Path, required=True)
    r.add_argument("--family", choices=BACKBONES, required=True)
    r.add_argument("--steps", type=int, default=200)
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--max-len", type=int, default=128)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--out", type=Path, required=True)
    m = sub.add_parser("summary")
    m.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args()
    if args.command == "summary":
        print(summary(args.results), end="")
        return
    if args.command == "corpus":
        make_corpus(args.titles, args.out, args.titles_per_document, args.heldout_share)
        return
    if args.command == "step-time":
        result = step_times(args.corpus, args.families, args.batch_size, args.max_len, args.steps, args.bf16_steps)
    else:
        result = short_run(args.corpus, args.family, args.steps, args.batch_size, args.max_len, args.lr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "losses"}, ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    main()
