"""fastText supervised classifiers, and a seeded, reproducible search over their arguments.

fastText always trains here with one thread: its Hogwild updates make multi-threaded runs
non-deterministic. One thread is not enough on its own, see `_zeroed_allocations`.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import fasttext
import numpy as np

from zhbench.io import BadInputError
from zhbench.models.search import recordable, tpe_maximize

log = logging.getLogger(__name__)

LABEL_PREFIX = "__label__"
MODEL_FILE = "model.bin"
_M_PERTURB = -6  # glibc mallopt parameter: fill each new heap allocation with ~value


@contextmanager
def _zeroed_allocations() -> Iterator[None]:
    """Make glibc malloc hand out zero-filled memory while fastText builds and trains a model.

    With thread=1, fastText 0.9.2 randomly initialises only the first tenth of the input matrix
    and counts on the rest being zero, but this wheel leaves that memory uninitialised: training
    then starts from whatever an earlier allocation left there, so runs in one process differ and
    tiny data can blow up ("Encountered NaN"). Perturbing fills allocations with ~0xff == 0x00.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:  # not glibc: fastText results may differ between runs
        log.warning("no glibc mallopt: fastText training may not be reproducible on this platform")
        yield
        return
    mallopt(_M_PERTURB, 0xFF)
    try:
        yield
    finally:
        mallopt(_M_PERTURB, 0)


@dataclass(frozen=True)
class FastTextArgs:
    """Training arguments, named as fastText's train_supervised names them (defaults are its own)."""

    epoch: int = 5
    lr: float = 0.1
    dim: int = 100
    wordNgrams: int = 1
    minCount: int = 1
    minn: int = 0  # subword char n-grams; minn=maxn=0 turns them off
    maxn: int = 0
    bucket: int = 2000000  # hash buckets for word and char n-grams: bucket*dim floats of memory
    loss: str = "softmax"


class FastText:
    """A trained model; `classes` gives the label id of each predict_proba column."""

    def __init__(self, model: fasttext.FastText._FastText):
        self._model = model
        self.classes = np.array(sorted(_label_id(label) for label in model.labels))
        self._column = {LABEL_PREFIX + str(c): i for i, c in enumerate(self.classes)}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities of every class for each token string (tokens separated by spaces)."""
        labels, probs = self._model.predict(list(texts), k=-1)
        out = np.zeros((len(labels), len(self.classes)), dtype=np.float64)
        for row, (row_labels, row_probs) in enumerate(zip(labels, probs)):
            out[row, [self._column[label] for label in row_labels]] = row_probs
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        # argmax over the sorted columns breaks exact ties towards the lower label id, every run.
        return self.classes[np.argmax(self.predict_proba(texts), axis=1)]

    def save(self, path: str | os.PathLike) -> str:
        """Write the model file; return its sha256 for `load` to check."""
        self._model.save_model(str(path))
        return _sha256(Path(path))


def _label_id(label: str) -> int:
    if not label.startswith(LABEL_PREFIX) or not label[len(LABEL_PREFIX):].isdigit():
        raise ValueError(f"expected fastText labels like {LABEL_PREFIX}3, found {label!r}")
    return int(label[len(LABEL_PREFIX):])


def train(train_file: str | os.PathLike, args: FastTextArgs, seed: int) -> FastText:
    """Train on a fastText-format file (`__label__<id> tokens` per line)."""
    if not Path(train_file).is_file():
        raise FileNotFoundError(f"{train_file}: fastText training file missing")
    with _zeroed_allocations():
        model = fasttext.train_supervised(input=str(train_file), **asdict(args), seed=seed, thread=1, verbose=0)
    return FastText(model)


def load(path: str | os.PathLike, sha256: str | None = None) -> FastText:
    """Load a model file written by `FastText.save`; give `sha256` (from model.json) to check it.

    fastText's loader ends the whole process, without an error, on a truncated file, so the
    checksum is what turns a damaged file into a clear error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: fastText model file missing; rerun the train_baseline stage")
    if sha256 is not None and _sha256(path) != sha256:
        raise BadInputError(
            path, None, "expected the model file train_baseline wrote (sha256 in model.json), found other bytes"
        )
    try:
        return FastText(fasttext.load_model(str(path)))
    except ValueError as err:
        raise BadInputError(path, None, f"expected a fastText model file, found something else ({err})") from err


@dataclass(frozen=True)
class SearchResult:
    best_args: FastTextArgs
    best_trial: int
    trials: list[dict[str, Any]]  # per trial: number, the searched args, dev_accuracy


def search(
    train_file: str | os.PathLike,
    dev_texts: Sequence[str],
    dev_labels: Sequence[int],
    base_args: FastTextArgs,
    search_space: Mapping[str, Sequence[int | float]],
    trials: int,
    seed: int,
) -> SearchResult:
    """Pick the args with the best dev accuracy among `trials` TPE samples of `search_space`.

    fastText's own autotune stops after a wall-clock duration, so what it finds depends on machine
    speed; a fixed number of seeded trials of deterministic training reproduces exactly.
    `search_space` maps an argument to [low, high]: integer bounds sample integers, float bounds
    sample on a log scale (learning rates span orders of magnitude).
    """
    import optuna

    known = {f.name for f in fields(FastTextArgs)}
    for name, bounds in search_space.items():
        if name not in known or len(bounds) != 2:
            raise ValueError(f"search_space.{name}: expected a fastText argument ({sorted(known)}) with [low, high]")
    dev_labels = np.asarray(dev_labels)

    def suggest(trial: optuna.Trial) -> FastTextArgs:
        for name, (low, high) in search_space.items():
            if isinstance(low, int) and isinstance(high, int):
                trial.suggest_int(name, low, high)
            else:
                trial.suggest_float(name, low, high, log=True)
        return replace(base_args, **recordable(trial.params))

    def dev_accuracy(trial: optuna.Trial) -> float:
        accuracy = float(np.mean(train(train_file, suggest(trial), seed).predict(dev_texts) == dev_labels))
        log.info("trial %d %s: dev accuracy %.4f", trial.number, trial.params, accuracy)
        return accuracy

    study = tpe_maximize(dev_accuracy, trials, seed, "fastText search")
    best = study.best_trial
    return SearchResult(
        best_args=replace(base_args, **recordable(best.params)),
        best_trial=best.number,
        trials=[{"number": t.number, "args": recordable(t.params), "dev_accuracy": t.value} for t in study.trials],
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
