"""Stage train_baseline: fit one baseline classifier (Random Forest, fastText or linear n-gram SVM) on the train split.

Tuned fastText and linear_ngram models first search their arguments on dev, then train with the best ones on train.
Writes the model dir atomically: the model files, model.json (what was trained, with which args,
the search trials and each file's sha256); the measured times go to --timing, outside the model
dir, so the model dir's bytes (and its DVC hash) repeat across runs.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_labels
from zhbench.evaluate import read_split, write_timing
from zhbench.io import atomic_dir, write_json
from zhbench.models import fasttext_model, linear_ngram, random_forest
from zhbench.runtime import seed_everything

BASELINE_TYPES = ("random_forest", "fasttext", "linear_ngram")


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--model", required=True, help="baseline name, a key of params `baselines` (e.g. fasttext_char)")
    p.add_argument("--data", required=True, help="processed dataset dir with labels.txt and <granularity>/ splits")
    p.add_argument("--timing", required=True, help="JSON of measured times (search, training) to write")
    p.add_argument("--out", required=True,
                   help="model dir to write, e.g. models/thucnews10/fasttext_char (replaced atomically)")
    return p


def baseline_section(params: dict, model: str) -> dict:
    """The `baselines.<model>` options, checked to name a known baseline type and a granularity."""
    baselines = P.section(params, "baselines")
    section = baselines.get(model) if model != "models" else None
    if not isinstance(section, dict):
        known = [name for name, value in baselines.items() if isinstance(value, dict)]
        raise ValueError(f"unknown model {model!r}: params `baselines` defines {known}")
    if section.get("type") not in BASELINE_TYPES:
        raise ValueError(f"baselines.{model}.type: expected one of {BASELINE_TYPES}, found {section.get('type')!r}")
    if section.get("granularity") not in ("char", "word"):
        raise ValueError(f"baselines.{model}.granularity: expected char or word, found {section.get('granularity')!r}")
    return section


def typed_options(config_class: type, options: dict, where: str):
    """Build a config dataclass, naming the params key of any option it does not know."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"{where}: unknown options {unknown}; expected some of {sorted(known)}")
    return config_class(**options)


def train_random_forest(section: dict, where: str, data: Path, seed: int, out: Path) -> dict:
    options = {k: v for k, v in section.items() if k not in ("type", "granularity", "threads")}
    config = typed_options(random_forest.RandomForestConfig, options, where)
    threads = int(section.get("threads", 1))
    n_labels = len(read_labels(data / "labels.txt"))
    texts, labels = read_split(data / section["granularity"] / "train.tsv", n_labels)
    start = time.perf_counter()
    model = random_forest.train(texts, labels, config, seed=seed, threads=threads)
    timing = {"train_seconds": time.perf_counter() - start}
    return {"args": dataclasses.asdict(config), "sha256": model.save(out), "timing": timing}


def train_fasttext(section: dict, where: str, data: Path, seed: int, out: Path) -> dict:
    options = {k: v for k, v in section.items() if k not in ("type", "granularity", "trials", "search_space")}
    args = typed_options(fasttext_model.FastTextArgs, options, where)
    train_file = data / section["granularity"] / "train.ft.txt"
    description, timing = {}, {}
    if "trials" in section:
        n_labels = len(read_labels(data / "labels.txt"))
        dev_texts, dev_labels = read_split(data / section["granularity"] / "dev.tsv", n_labels)
        start = time.perf_counter()
        result = fasttext_model.search(
            train_file, dev_texts, dev_labels, args, section.get("search_space") or {}, int(section["trials"]), seed
        )
        timing["search_seconds"] = time.perf_counter() - start
        args = result.best_args
        description["search"] = {"best_trial": result.best_trial, "trials": result.trials}
        stage.log.info("best of %d trials: #%d %s", len(result.trials), result.best_trial, args)
    start = time.perf_counter()
    model = fasttext_model.train(train_file, args, seed)
    timing["train_seconds"] = time.perf_counter() - start
    sha256 = {fasttext_model.MODEL_FILE: model.save(out / fasttext_model.MODEL_FILE)}
    return {**description, "args": dataclasses.asdict(args), "sha256": sha256, "timing": timing}


def train_linear_ngram(section: dict, where: str, data: Path, seed: int, out: Path) -> dict:
    if section["granularity"] != "char":
        raise ValueError(f"{where}.granularity: expected char (linear_ngram reads both splits but is served char "
                         f"tokens, rebuilding the word tokens from them), found {section['granularity']!r}")
    options = {k: v for k, v in section.items() if k not in ("type", "granularity", "trials", "search_space")}
    config = typed_options(linear_ngram.LinearNgramConfig, options, where)
    n_labels = len(read_labels(data / "labels.txt"))
    train_titles = linear_ngram.read_titles(data, "train", n_labels)
    dev_titles = linear_ngram.read_titles(data, "dev", n_labels)
    description = {"served_word_split": {"split": "dev", **linear_ngram.check_served_words(dev_titles, str(data))}}
    timing = {}
    if "trials" in section:
        start = time.perf_counter()
        result = linear_ngram.search(
            train_titles, dev_titles, config, section.get("search_space") or {}, int(section["trials"]), seed
        )
        timing["search_seconds"] = time.perf_counter() - start
        config = result.best_config
        description["search"] = {"best_trial": result.best_trial, "trials": result.trials}
        stage.log.info("best of %d trials: #%d %s", len(result.trials), result.best_trial, config)
    start = time.perf_counter()
    model = linear_ngram.train(train_titles, config, seed)
    timing["train_seconds"] = time.perf_counter() - start
    return {**description, "args": dataclasses.asdict(config), "sha256": model.save(out), "timing": timing}


TRAINERS = {"random_forest": train_random_forest, "fasttext": train_fasttext, "linear_ngram": train_linear_ngram}


def run(args, params):
    section = baseline_section(params, args.model)
    seed = int(P.section(params, "seed"))
    seed_everything(seed, with_torch=False)
    stage.log.info("training %s (%s, %s granularity), seed %d",
                   args.model, section["type"], section["granularity"], seed)
    with atomic_dir(args.out) as out:
        trained = TRAINERS[section["type"]](section, f"baselines.{args.model}", Path(args.data), seed, out)
        timing = trained.pop("timing")
        description = {"model": args.model, "type": section["type"], "granularity": section["granularity"]}
        write_json(out / "model.json", {**description, "seed": seed, **trained})
    write_timing(args.timing, timing)
    stage.log.info("wrote %s", args.out)


main = stage.entry_point(run, build_parser)

if __name__ == "__main__":
    sys.exit(main())
