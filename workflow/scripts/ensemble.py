"""Stage ensemble: a weighted average of trained classifiers' probabilities, weights chosen on dev.

Writes the ensemble dir (zhbench.json: members, weights, every weighting tried on dev), its
evaluation like every model's (metrics JSON with dev and test reports, the test confusion CSV
and heat map) and the time it took to score each split.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_examples, read_labels
from zhbench.evaluate import classification_report, write_evaluation, write_timing
from zhbench.runtime import seed_everything, set_threads


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--data", required=True, help="processed dataset dir (labels.txt, text/{dev,test}.tsv)")
    p.add_argument("--models", required=True, help="the task's models dir (models/<task>), holding every member")
    p.add_argument("--out", required=True, help="ensemble dir to write")
    p.add_argument("--metrics", required=True, help="quality metrics JSON (dev and test reports, weights)")
    p.add_argument("--timing", required=True, help="timing JSON (seconds to score each split)")
    p.add_argument("--confusion", required=True, help="test confusion CSV (dvc plots)")
    p.add_argument("--figure", required=True, help="test confusion heat map PNG")
    return p


def run(args, params):
    from zhbench.ensemble import EnsemblePredictor, member_dir, mix, save_ensemble, search_weights
    from zhbench.predict import load_predictor
    from zhbench.predictors import TextClassifier

    cfg = P.section(params, "ensemble")
    members = list(cfg["members"])
    seed_everything(int(P.section(params, "seed")))
    set_threads(int(cfg.get("threads", 1)))
    data = Path(args.data)
    labels = read_labels(data / "labels.txt")
    splits = {s: read_examples(data / "text" / f"{s}.tsv", len(labels)).examples for s in ("dev", "test")}
    titles = {s: [e.text for e in rows] for s, rows in splits.items()}
    gold = {s: np.asarray([e.label for e in rows]) for s, rows in splits.items()}

    probs: dict[str, dict[str, np.ndarray]] = {s: {} for s in splits}
    seconds = {s: 0.0 for s in splits}
    predictors = []
    for member in members:
        predictor, _ = load_predictor(member_dir(Path(args.models), member), labels)
        predictors.append(predictor)
        clf = TextClassifier(predictor)
        for split in splits:
            start = time.perf_counter()
            probs[split][member] = clf.predict_proba(titles[split])
            seconds[split] += time.perf_counter() - start
        stage.log.info("%s: dev acc %.4f", member, float((probs["dev"][member].argmax(1) == gold["dev"]).mean()))

    search = search_weights([probs["dev"][m] for m in members], gold["dev"], float(cfg.get("grid_step", 0.1)))
    stage.log.info("weights %s: dev acc %.4f (log-loss %.4f)", dict(zip(members, search.weights)),
                   search.dev_accuracy, search.dev_log_loss)
    save_ensemble(args.out, members, search.weights, labels, search)
    reports = {}
    for split in splits:
        p = mix([probs[split][m] for m in members], search.weights)
        loss = float(-np.log(np.clip(p[np.arange(len(p)), gold[split]], 1e-12, None)).mean())
        reports[split] = classification_report(gold[split], p.argmax(1), labels, loss=loss)
    write_evaluation(args.metrics, args.confusion, args.figure, reports, {
        "model": "ensemble", "granularity": "char", "members": members,
        "weights": dict(zip(members, search.weights)),
        "member_test_accuracy": {m: float((probs["test"][m].argmax(1) == gold["test"]).mean()) for m in members},
    })
    # the dir just written, loaded as the service will: its answers must be what was scored
    served = EnsemblePredictor([pr for pr, w in zip(predictors, search.weights) if w > 0],
                               [w for w in search.weights if w > 0], labels)
    check = TextClassifier(served).predict_proba(titles["test"][:64])
    expected = mix([probs["test"][m][:64] for m in members], search.weights)
    if not np.allclose(check, expected, atol=1e-9):
        raise RuntimeError("the saved ensemble does not reproduce the probabilities it was scored with")
    write_timing(args.timing, {"score_seconds": seconds, "members": members})
    stage.log.info("test acc %.4f (members: %s)", reports["test"]["accuracy"],
                   {m: round(float((probs['test'][m].argmax(1) == gold['test']).mean()), 4) for m in members})


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
