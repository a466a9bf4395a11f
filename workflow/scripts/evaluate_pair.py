"""Stage evaluate_pair: score a trained LCQMC pair classifier on the evaluation pairs (test.txt).

Writes quality metrics in the write-up's columns (global_step, eval_accuracy, eval_loss, train_loss,
samples) plus precision/recall/F1 of the "same intent" class, byte-identical across reruns, and a
separate timing JSON (train and valid step/epoch times, device).
"""
from __future__ import annotations

import sys

from zhbench import params as P
from zhbench import stage
from zhbench.data.lcqmc import read_pairs
from zhbench.encoders import starting_point
from zhbench.io import read_json, write_json
from zhbench.pair import evaluate, load_pair_model
from zhbench.runtime import seed_everything, set_threads


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--model", required=True, help="model dir written by train_pair, e.g. models/lcqmc/albert")
    p.add_argument("--eval", required=True, help="labelled evaluation pairs, e.g. data/raw/lcqmc/test.txt")
    p.add_argument("--metrics", required=True, help="quality metrics JSON to write, e.g. metrics/lcqmc/albert.json")
    p.add_argument("--train-timing", required=True, help="train_pair's timing JSON (merged into --timing)")
    p.add_argument("--timing", required=True, help="timing JSON to write, e.g. metrics/lcqmc/albert_timing.json")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run(args, params):
    model, encoder, cfg, summary = load_pair_model(args.model)
    train_timing = read_json(args.train_timing)
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    pairs = read_pairs(args.eval)
    available = len(pairs)
    cap = P.section(params, "pair").get("max_eval_pairs")
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
            raise ValueError(f"params pair.max_eval_pairs must be a positive integer or null, got {cap!r}")
        pairs = pairs[:cap]
    scores, _, valid_timing = evaluate(model, pairs, encoder, cfg.max_len, cfg.eval_batch_size,
                                       progress=not args.no_progress)
    model_name = starting_point(cfg.pretrained, cfg.backbone, cfg.size)
    metrics = {"variant": summary["variant"], "backbone": cfg.backbone, "model": model_name,
               "train_split": summary["train_split"], "eval_split": "test",
               "global_step": summary["global_step"], "epochs": summary["epochs_run"],
               "samples": summary["samples"], "train_loss": summary["train_loss"], **scores,
               "eval_samples_available": available}
    write_json(args.metrics, metrics)
    write_json(args.timing, {**train_timing, **valid_timing, "backbone": cfg.backbone})
    stage.log.info("%s: accuracy %.4f, F1 %.4f, loss %.4f on %d pairs", cfg.backbone, scores["eval_accuracy"],
                   scores["eval_f1"], scores["eval_loss"], len(pairs))


main = stage.entry_point(run, build_parser)

if __name__ == "__main__":
    sys.exit(main())
