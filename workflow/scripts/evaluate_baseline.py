"""Stage evaluate_baseline: score one trained baseline on dev and test.

Writes the metrics JSON (quality only, byte-identical across reruns), the test confusion CSV for
`dvc plots` and its heat map, and a separate timing JSON (train seconds, predict milliseconds per
sample).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_labels
from zhbench.evaluate import classification_report, read_split, write_evaluation, write_timing
from zhbench.io import read_json
from zhbench.models import fasttext_model, linear_ngram, random_forest

SPLITS = ("dev", "test")


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--model", required=True, help="baseline name; must match the model dir's model.json")
    p.add_argument("--data", required=True, help="processed dataset dir with labels.txt and <granularity>/ splits")
    p.add_argument("--model-dir", required=True, help="model dir written by train_baseline")
    p.add_argument("--metrics", required=True, help="metrics JSON to write: dev and test reports, model, args")
    p.add_argument("--train-timing", required=True, help="train_baseline's timing JSON (merged into --timing)")
    p.add_argument("--timing", required=True, help="timing JSON to write: train seconds, predict ms per sample")
    p.add_argument("--confusion", required=True, help="test confusion CSV to write (actual,predicted per sample)")
    p.add_argument("--figure", required=True, help="test confusion-matrix heat map PNG to write")
    return p


def load_model(model_dir: Path, description: dict):
    if description["type"] == "random_forest":
        return random_forest.load(model_dir, description["sha256"])
    if description["type"] == "fasttext":
        name = fasttext_model.MODEL_FILE
        return fasttext_model.load(model_dir / name, description["sha256"][name])
    if description["type"] == "linear_ngram":
        return linear_ngram.load(model_dir, description["sha256"])
    raise ValueError(f"{model_dir / 'model.json'}: unknown baseline type {description['type']!r}")


def run(args, params):
    model_dir, data = Path(args.model_dir), Path(args.data)
    if not (model_dir / "model.json").is_file():
        raise FileNotFoundError(f"{model_dir / 'model.json'}: missing; run train_baseline for {args.model} first")
    description = read_json(model_dir / "model.json")
    if description["model"] != args.model:
        raise ValueError(f"{model_dir}: holds model {description['model']!r}, not {args.model!r}")
    model = load_model(model_dir, description)

    label_names = read_labels(data / "labels.txt")
    reports, predict_ms = {}, {}
    for split in SPLITS:
        if description["type"] == "linear_ngram":  # features from both granularities of each title
            titles = linear_ngram.read_titles(data, split, len(label_names))
            inputs, labels = (titles.chars, titles.words), titles.labels
        else:
            texts, labels = read_split(data / description["granularity"] / f"{split}.tsv", len(label_names))
            inputs = (texts,)
        start = time.perf_counter()
        predicted = model.predict(*inputs)
        predict_ms[split] = 1000 * (time.perf_counter() - start) / len(labels)
        reports[split] = classification_report(labels, predicted, label_names)
        stage.log.info("%s %s: accuracy %.4f, macro F1 %.4f",
                       args.model, split, reports[split]["accuracy"], reports[split]["macro"]["f1"])

    extra = {
        "model": args.model,
        "granularity": description["granularity"],
        "profile": P.section(params, "profile"),
        "variant": P.section(params, "data.variant"),
        "args": description["args"],
    }
    if "search" in description:
        extra["search"] = description["search"]
    write_evaluation(args.metrics, args.confusion, args.figure, reports, extra)
    write_timing(args.timing, {**read_json(args.train_timing), "predict_ms_per_sample": predict_ms})
    stage.log.info("wrote %s", args.metrics)


main = stage.entry_point(run, build_parser)

if __name__ == "__main__":
    sys.exit(main())
