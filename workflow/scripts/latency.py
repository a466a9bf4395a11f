"""Stage latency: every served classifier timed the same way, side by side, alone on the machine.

Each model is loaded as `zhbench serve` loads it and answers raw test titles through the same
segmentation, at batch 1 and at batch 64. The models take turns (runtime.fastest_interleaved) and
each keeps its fastest batch, so the ratios between them compare like with like; the stage holds
the whole machine (cpu_share), so no other job runs beside it. Writes seconds per sample per
model and batch size, with the machine they were measured on.
"""
from __future__ import annotations

import sys
from pathlib import Path

from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_examples, read_labels
from zhbench.evaluate import write_timing
from zhbench.runtime import seed_everything, set_threads

BATCHES = (1, 64)


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--data", required=True, help="processed dataset dir (labels.txt, text/test.tsv)")
    p.add_argument("--model", nargs="+", required=True, help="the served models, as `zhbench serve --model` names them")
    p.add_argument("--model-dir", nargs="+", required=True, help="their directories, in the same order")
    p.add_argument("--timing", required=True, help="timing JSON to write")
    return p


def run(args, params):
    from zhbench.devices import cpu_info, device_name
    from zhbench.predict import load_predictor
    from zhbench.predictors import TextClassifier
    from zhbench.runtime import fastest_interleaved
    cfg = P.section(params, "latency")
    seed_everything(int(P.section(params, "seed")))
    set_threads(int(cfg["threads"]))
    data = Path(args.data)
    labels = read_labels(data / "labels.txt")
    titles = [e.text for e in read_examples(data / "text" / "test.tsv", len(labels)).examples][: int(cfg["titles"])]
    if len(args.model) != len(args.model_dir):
        raise ValueError(f"{len(args.model)} --model names but {len(args.model_dir)} --model-dir directories")
    classifiers = {}
    for name, model_dir in zip(args.model, args.model_dir):
        predictor, _ = load_predictor(Path(model_dir), labels)
        classifiers[name] = TextClassifier(predictor)
        classifiers[name].predict_proba(titles[:max(BATCHES)])  # warm-up: lazy imports, first allocations

    def batch(size: int, round_: int) -> list[str]:
        start = (round_ * size) % max(1, len(titles) - size)
        return titles[start:start + size]

    tasks = {(name, bs): (lambda r, c=clf, bs=bs: c.predict_proba(batch(bs, r)))
             for name, clf in classifiers.items() for bs in BATCHES}
    best = fastest_interleaved(tasks, int(cfg["rounds"]), float(cfg["max_seconds"]))
    seconds = {name: {f"batch_{bs}": best[(name, bs)] / bs for bs in BATCHES} for name in classifiers}
    write_timing(args.timing, {"device": device_name(), "cpu": cpu_info(), "threads": int(cfg["threads"]),
                               "titles": len(titles), "seconds_per_sample": seconds})
    for name, s in seconds.items():
        stage.log.info("%s: %.3f ms/sample at batch 1, %.3f at batch 64", name, 1000 * s["batch_1"],
                       1000 * s["batch_64"])


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
