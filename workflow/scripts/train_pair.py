"""Stage train_pair: train one backbone as an LCQMC sentence-pair classifier ([CLS] s1 [SEP] s2 [SEP]).

Variant lcqmc-devtest trains on dev.txt (8,802 pairs; the train split is not obtainable). Writes the
model dir atomically: classifier/ (backbone + head), tokenizer.json (char vocabulary), train.json
(global_step, samples, train loss per epoch); the measured times go to --timing.
"""
from __future__ import annotations

import dataclasses
import sys

from zhbench import layout
from zhbench import params as P
from zhbench import stage
from zhbench.data.lcqmc import read_pairs
from zhbench.io import write_json
from zhbench.pair import build_classifier, resolve_config, save_pair_model, train_classifier, training_pair_encoder
from zhbench.runtime import seed_everything, set_threads


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--backbone", required=True, help="backbone to train, one of params pair.backbones (albert, bert)")
    p.add_argument("--train", required=True, help="training pairs s1<TAB>s2<TAB>label, e.g. data/raw/lcqmc/dev.txt")
    p.add_argument("--out", required=True, help="model dir to write, e.g. models/lcqmc/albert (replaced atomically)")
    p.add_argument("--timing", required=True, help="JSON of measured training times to write")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (logs still report each epoch)")
    return p


def run(args, params):
    section = P.section(params, "pair")
    cfg = resolve_config(section, args.backbone, int(P.section(params, "seed")))
    cfg = dataclasses.replace(cfg, pretrained=layout.pretrained_source(cfg.pretrained, args.backbone, params))
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    pairs = read_pairs(args.train)
    available = len(pairs)
    if cfg.max_train_pairs is not None:
        pairs = pairs[: cfg.max_train_pairs]
    # A pretrained backbone reads its checkpoint's vocabulary; from scratch, the training chars.
    encoder = training_pair_encoder(cfg, pairs)
    stage.log.info("%s: %d of %d training pairs, %d entries in the vocabulary", args.backbone, len(pairs), available,
                   encoder.vocab_size)
    model = build_classifier(cfg, encoder)
    result = train_classifier(model, pairs, encoder, cfg, progress=not args.no_progress)
    summary = {"variant": section.get("variant"), "backbone": cfg.backbone, "train_split": "dev",
               "samples": len(pairs), "samples_available": available, "global_step": result.steps,
               "epochs_run": result.epochs_run, "train_loss": result.train_loss, "history": result.epochs}
    save_pair_model(model.cpu(), args.out, encoder, cfg, summary)
    write_json(args.timing, result.timing)
    stage.log.info("%s: %d steps, final-epoch train loss %.4f, %.3f s/step -> %s", cfg.backbone, result.steps,
                   result.train_loss, result.timing["train_step_time"], args.out)


main = stage.entry_point(run, build_parser)

if __name__ == "__main__":
    sys.exit(main())
