"""An ensemble of trained classifiers: a weighted average of their calibrated probabilities.

Which members count and how much is chosen on dev only: every weighting on a grid over the simplex
(steps of `grid_step`; a zero weight leaves a member out) is scored by dev accuracy, ties broken by
dev log-loss, then by grid order, so the choice is deterministic. The test split is scored once,
with the chosen weights.

Members are read through zhbench.predict, the loaders the service uses, on the raw titles: every
member segments a title as its own training split was segmented. The ensemble dir holds only
JSON naming its members (dirs relative to the models root) and their weights; serving loads the
members from there.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

from zhbench.io import atomic_dir, read_json, write_json
from zhbench.layout import model_subpath

if TYPE_CHECKING:
    from zhbench.predictors import Predictor

META_FILE = "zhbench.json"


@dataclass
class WeightSearch:
    weights: list[float]
    dev_accuracy: float
    dev_log_loss: float
    trials: list[dict] = field(default_factory=list)


def weight_grid(n: int, step: float) -> Iterable[tuple[float, ...]]:
    """Every weighting of n members in multiples of `step` that sums to 1."""
    units = round(1 / step)
    if abs(units * step - 1) > 1e-9:
        raise ValueError(f"ensemble.grid_step must divide 1, got {step}")
    for cut in itertools.combinations(range(units + n - 1), n - 1):  # stars and bars
        bounds = (-1, *cut, units + n - 1)
        yield tuple((bounds[i + 1] - bounds[i] - 1) / units for i in range(n))


def mix(probs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    return sum(w * p for w, p in zip(weights, probs))


def search_weights(dev_probs: Sequence[np.ndarray], dev_labels: np.ndarray, step: float = 0.1) -> WeightSearch:
    """The dev-best weighting (accuracy, then log-loss); every weighting tried is recorded."""
    best: WeightSearch | None = None
    trials = []
    for weights in weight_grid(len(dev_probs), step):
        p = mix(dev_probs, weights)
        acc = float((p.argmax(1) == dev_labels).mean())
        loss = float(-np.log(np.clip(p[np.arange(len(dev_labels)), dev_labels], 1e-12, None)).mean())
        trials.append({"weights": list(weights), "dev_accuracy": acc, "dev_log_loss": loss})
        if best is None or (acc, -loss) > (best.dev_accuracy, -best.dev_log_loss):
            best = WeightSearch(list(weights), acc, loss)
    best.trials = trials
    return best


class EnsemblePredictor:
    """A zhbench.predictors Predictor over the members' TextClassifiers: raw titles in."""

    granularity = "char"  # what it prepares is the raw title; each member segments its own way

    def __init__(self, members: list, weights: list[float], labels: list[str]):
        from zhbench.predictors import TextClassifier

        self.members = [TextClassifier(m) for m in members]
        self.weights, self.labels = weights, labels
        for m in self.members:
            if m.labels != labels:
                raise ValueError(f"an ensemble member's labels {m.labels} are not {labels}")

    def prepare(self, title: str, stopwords=()) -> str:
        return title.strip()

    def predict_proba(self, titles: list[str]) -> np.ndarray:
        active = [(w, m) for w, m in zip(self.weights, self.members) if w > 0]
        return mix([m.predict_proba(titles) for _, m in active], [w for w, _ in active])


def save_ensemble(out_dir: str | os.PathLike, members: list[str], weights: list[float], labels: list[str],
                  search: WeightSearch) -> None:
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / META_FILE, {"kind": "ensemble", "granularity": "char", "labels": labels,
                                     "members": [{"model": m, "weight": w} for m, w in zip(members, weights)],
                                     "search": {"dev_accuracy": search.dev_accuracy,
                                                "dev_log_loss": search.dev_log_loss, "trials": search.trials}})


def load_ensemble_predictor(model_dir: Path, labels: list[str] | None,
                            load_member: Callable[[Path, list[str]], Predictor]):
    """predict.py's loader of kind "ensemble": members are models/<task>/<member> beside this dir,
    each loaded by `load_member` (predict's own load_predictor, which knows every kind)."""
    meta = read_json(Path(model_dir) / META_FILE)
    labels = labels or meta["labels"]
    root = Path(model_dir).parent  # models/<task>/
    members, weights = [], []
    for m in meta["members"]:
        if m["weight"] > 0:
            members.append(load_member(member_dir(root, m["model"]), labels))
            weights.append(float(m["weight"]))
    predictor = EnsemblePredictor(members, weights, list(labels))
    name = " + ".join(f"{w:g}·{m['model']}" for m, w in zip([m for m in meta["members"] if m["weight"] > 0], weights))
    return predictor, {"name": "ensemble", "type": "ensemble", "members": name}


def member_dir(models_task_dir: Path, member: str) -> Path:
    """A member's dir under models/<task>/, as zhbench.layout places every served model."""
    return models_task_dir / model_subpath(member)
