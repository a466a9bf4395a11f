"""Stage pretrain: one backbone family pre-trained on the unlabelled corpus with its own objective.

bert MLM (static masks) + NSP, roberta dynamic whole-word MLM, macbert MLM-as-correction + SOP,
mengzi whole-word MLM + jieba POS, ernie knowledge (entity/phrase) masking + NSP, albert n-gram MLM
+ SOP, electra replaced-token detection, xlnet permutation LM, t5 span corruption, nezha
whole-word MLM (zhbench.pretrain). A fixed number of steps through zhbench.fit, so the result is
deterministic; the held-out corpus text is scored at the end with the same fixed masks every run.

The vocabulary is the project's char vocabulary of the classification task (build_vocab), so a
backbone fine-tuned from this checkpoint reads titles exactly as one trained from scratch does:
the two rows of the report differ in their starting weights only. Writes the backbone in hub
layout (config.json, model.safetensors, tokenizer.json, pretrain.json), the held-out metrics
(write-up 002's MLM/SOP table) and the training time.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from zhbench import params as P
from zhbench import stage
from zhbench.evaluate import write_timing
from zhbench.io import write_json
from zhbench.runtime import seed_everything, set_threads


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--backbone", required=True, help="backbone family to pre-train (one of pretrain.families)")
    p.add_argument("--corpus", required=True, help="corpus dir (train.txt, heldout.txt: the corpus stage's output)")
    p.add_argument("--vocab", required=True, help="the task's char vocabulary dir (tokenizer.json)")
    p.add_argument("--out", required=True, help="checkpoint dir to write (hub layout)")
    p.add_argument("--metrics", required=True, help="held-out metrics JSON")
    p.add_argument("--timing", required=True, help="timing JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def settings(section: dict, family: str, seed: int) -> tuple[dict, "FitSettings"]:  # noqa: F821
    from zhbench.fit import FitSettings

    own = (section.get("per_family") or {}).get(family) or {}
    merged = {k: v for k, v in {**section, **own}.items() if k not in ("families", "per_family")}
    objective = {"max_len": int(merged.pop("max_len")), "eval_batches": int(merged.pop("eval_batches")),
                 "max_documents": merged.pop("max_documents", None), "options": dict(merged.pop("options", {}) or {})}
    steps = int(merged.pop("steps"))
    fit = FitSettings.from_dict({**merged, "max_steps": steps, "epochs": 10**6, "seed": seed}, f"params pretrain ({family})")
    return objective, fit


def sample_documents(documents: list, limit: int | None, seed: int) -> list:
    """At most `limit` documents, a seeded sample kept in corpus order (every source keeps its share)."""
    if limit is None or len(documents) <= limit:
        return documents
    import random

    return [documents[i] for i in sorted(random.Random(seed).sample(range(len(documents)), int(limit)))]


def run(args, params):
    from zhbench.fit import fit
    from zhbench.pretrain import DESCRIPTIONS, objective_for
    from zhbench.pretrain.corpus import read_documents, split_path
    from zhbench.pretrain.driver import heldout_batches
    from zhbench.text.vocab import load_tokenizer

    section = P.section(params, "pretrain")
    if args.backbone not in section["families"]:
        raise ValueError(f"backbone {args.backbone!r} is not listed in params pretrain.families")
    seed = int(P.section(params, "seed"))
    obj_cfg, cfg = settings(section, args.backbone, seed)
    seed_everything(seed)
    set_threads(cfg.threads)
    tokenizer = load_tokenizer(Path(args.vocab) / "tokenizer.json")
    objective = objective_for(args.backbone, tokenizer, obj_cfg["max_len"], **obj_cfg["options"])
    limit = obj_cfg["max_documents"]
    train = objective.examples(sample_documents(read_documents(split_path(args.corpus, "train")), limit, seed))
    heldout = objective.examples(sample_documents(read_documents(split_path(args.corpus, "heldout")), limit, seed))
    eval_batches = heldout_batches(objective, heldout, cfg.batch_size, obj_cfg["eval_batches"], seed + 1)
    stage.log.info("%s: %d training and %d held-out examples of %d tokens at most", args.backbone, len(train),
                   len(heldout), obj_cfg["max_len"])

    torch.manual_seed(seed)
    model = objective.build_model()
    untrained_scores = objective.evaluate(model, eval_batches)
    result = fit(model, objective.dataset(train, seed), cfg, progress=not args.no_progress,
                 desc=f"pretrain {args.backbone}")
    scores = objective.evaluate(model, eval_batches)
    untrained_weights = objective.export(model, args.out, {"steps": result.steps,
                                                           "objective": DESCRIPTIONS[args.backbone]})
    write_json(args.metrics, {
        "backbone": args.backbone, "objective": DESCRIPTIONS[args.backbone], "steps": result.steps,
        "batch_size": cfg.batch_size, "max_len": obj_cfg["max_len"], "train_examples": len(train),
        "heldout_examples": len(heldout), "final_train_loss": result.last_loss, "untrained": untrained_scores,
        "weights_left_untrained": untrained_weights, **scores})
    write_timing(args.timing, {**result.timing, "heldout_batches": len(eval_batches)})
    stage.log.info("%s: %s", args.backbone, {k: round(v, 4) for k, v in scores.items()})


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
