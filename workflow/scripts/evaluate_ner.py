"""Stage evaluate_ner: score a trained BERT+CRF tagger on one NER variant's evaluation split.

cluener scores dev.json (the official test set is unlabelled); pd1998-devtest scores example.test.
Writes quality metrics (entity-level seqeval micro P/R/F1, mean NLL, a per-entity table and the
per-type macro F1, byte-identical across reruns), a separate timing JSON (train and valid step/epoch
times, device), and the predictions of the evaluation split in CLUENER span format.
"""
from __future__ import annotations

import sys
from pathlib import Path

from zhbench import stage
from zhbench.io import read_json, write_json
from zhbench.data.ner import write_cluener_predictions
from zhbench.models.crf_tagger import load_tagger
from zhbench import params as P
from zhbench.ner import (NerConfig, describe_model, eval_cap, get_variant, load_char_encoder, ner_metrics, predict,
                         read_sentences)
from zhbench.runtime import seed_everything, set_threads


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--variant", required=True, help="NER dataset variant: cluener | pd1998-devtest")
    p.add_argument("--model", required=True, help="model dir written by train_ner, e.g. models/ner/cluener")
    p.add_argument("--eval", required=True,
                   help="labelled evaluation file: data/raw/cluener/dev.json or data/raw/pd1998/example.test")
    p.add_argument("--metrics", required=True, help="quality metrics JSON to write, e.g. metrics/ner/cluener.json")
    p.add_argument("--train-timing", required=True, help="train_ner's timing JSON (merged into --timing)")
    p.add_argument("--timing", required=True, help="timing JSON to write, e.g. metrics/ner/cluener_timing.json")
    p.add_argument("--predictions", required=True,
                   help="predictions to write (JSON lines, CLUENER format {id, text, label: {type: {entity: [[s, e]]}}})")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run(args, params):
    variant = get_variant(args.variant)
    model, extra = load_tagger(args.model)
    if extra["train"]["variant"] != variant.name:
        raise ValueError(f"{args.model} was trained on variant {extra['train']['variant']!r}, not {variant.name!r}")
    cfg = NerConfig.from_dict(extra["config"])
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    encoder = load_char_encoder(args.model, extra)

    # Gold nested spans cannot be BIO-tagged either; the eval splits have none, so "error" holds.
    sentences, _ = read_sentences(variant, args.eval, "error")
    available = len(sentences)
    cap = eval_cap(P.section(params, "ner"), variant.name)
    if cap is not None:
        sentences = sentences[:cap]
    predicted, loss, valid_timing = predict(model, sentences, encoder, extra["tags"], cfg.max_len,
                                            cfg.eval_batch_size, progress=not args.no_progress)
    scores = ner_metrics([s.tags for s in sentences], predicted, variant.types, variant.display)
    train = extra["train"]
    metrics = {
        "variant": variant.name, "model": describe_model(cfg),
        "train_split": variant.train_split, "eval_split": variant.eval_split,
        "train_sentences": train["train_sentences"], "eval_sentences": len(sentences),
        "eval_sentences_available": available,
        "epochs": train["epochs_run"], "steps": train["steps"], "train_loss": train["train_loss"],
        "dropped_nested_spans": train["dropped_nested_spans"],
        "loss": loss,  # mean CRF negative log-likelihood per window of the evaluation split
        **scores,
    }
    write_json(args.metrics, metrics)
    train_timing = read_json(args.train_timing)
    write_json(args.timing, {**train_timing, **valid_timing, "variant": variant.name})
    write_cluener_predictions(args.predictions, sentences, predicted)
    stage.log.info("%s %s-split: P %.4f R %.4f F1 %.4f (macro F1 %.4f), loss %.4f", variant.name, variant.eval_split,
                   scores["precision"], scores["recall"], scores["f1"], scores["overall_macro_f1"], loss)


main = stage.entry_point(run, build_parser)

if __name__ == "__main__":
    sys.exit(main())
