"""Stage train_ner: train a BERT+CRF character tagger on one NER variant's training split.

cluener trains on train.json; pd1998-devtest trains on example.dev (the corpus's train split is not
obtainable). Writes the model dir atomically: backbone + crf_head.safetensors, zhbench.json (tags,
config, training summary) and the tokenizer; the measured times go to --timing, outside the model dir.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import asdict

from zhbench import layout
from zhbench import params as P
from zhbench import stage
from zhbench.data.ner import tag_set
from zhbench.io import write_text
from zhbench.models.crf_tagger import save_tagger
from zhbench.ner import (build_tagger, get_variant, make_windows, read_sentences, training_char_encoder,
                         resolve_config, train_tagger)
from zhbench.runtime import seed_everything, set_threads


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--variant", required=True, help="NER dataset variant: cluener | pd1998-devtest")
    p.add_argument("--train", required=True,
                   help="training file: data/raw/cluener/train.json or data/raw/pd1998/example.dev")
    p.add_argument("--out", required=True, help="model dir to write, e.g. models/ner/cluener (replaced atomically)")
    p.add_argument("--timing", required=True, help="JSON of measured training times to write")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (logs still report each epoch)")
    return p


def run(args, params):
    variant = get_variant(args.variant)
    cfg, on_nested = resolve_config(P.section(params, "ner"), variant.name, int(P.section(params, "seed")))
    cfg = dataclasses.replace(cfg, pretrained=layout.pretrained_source(cfg.pretrained, cfg.backbone, params))
    seed_everything(cfg.seed)
    set_threads(cfg.threads)

    sentences, dropped = read_sentences(variant, args.train, on_nested)
    total = len(sentences)
    if cfg.max_train_sentences is not None:
        sentences = sentences[: cfg.max_train_sentences]
    # A pretrained backbone reads its checkpoint's vocabulary; from scratch, the training chars.
    encoder = training_char_encoder(cfg, sentences)
    tags = tag_set(variant.types)
    windows = make_windows(sentences, {t: i for i, t in enumerate(tags)}, encoder.width(cfg.max_len))
    stage.log.info("%s: %d of %d training sentences -> %d windows; %d entries in the vocabulary",
                   variant.name, len(sentences), total, len(windows), encoder.vocab_size)

    model = build_tagger(cfg, encoder, len(tags))
    result = train_tagger(model, windows, encoder, cfg, progress=not args.no_progress)

    summary = {"variant": variant.name, "train_split": variant.train_split, "train_sentences": len(sentences),
               "train_sentences_available": total, "train_windows": len(windows),
               "dropped_nested_spans": dropped, "steps": result.steps, "epochs_run": result.epochs_run,
               "train_loss": result.train_loss, "history": result.epochs}
    timing = json.dumps(result.timing, indent=2, sort_keys=True) + "\n"
    save_tagger(model.cpu(), args.out,
                extra={"tags": tags, "max_len": cfg.max_len, "config": asdict(cfg), "train": summary},
                encoder=encoder)
    write_text(args.timing, timing)
    stage.log.info("trained %d steps (%.2f epochs), final-epoch train loss %.4f, %.3f s/step -> %s",
                   result.steps, result.epochs_run, result.train_loss, result.timing["train_step_time"], args.out)


main = stage.entry_point(run, build_parser)

if __name__ == "__main__":
    sys.exit(main())
