"""Random Forest over a bag of words: the classic non-neural baseline.

Input is pre-tokenised text (tokens joined by single spaces, from zhbench.text.segment), so the
vectoriser only splits on spaces and never re-tokenises or lowercases.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer
from tqdm.auto import tqdm

from zhbench.io import BadInputError

VOCABULARY_FILE = "vocabulary.json"
FOREST_FILE = "forest.pkl"
# Trees are grown in chunks of this many so a progress bar can follow training.
_TREES_PER_STEP = 10


@dataclass(frozen=True)
class RandomForestConfig:
    max_features_vocab: int = 20000  # bag-of-words size: the most frequent tokens in train
    n_estimators: int = 100
    max_depth: int | None = None
    min_samples_leaf: int = 1


def _vectorizer(vocabulary: dict[str, int] | None = None, max_features: int | None = None) -> CountVectorizer:
    return CountVectorizer(token_pattern=r"[^ ]+", lowercase=False, vocabulary=vocabulary, max_features=max_features)


class RandomForest:
    """A fitted bag-of-words vocabulary and forest; `classes` gives the label id of each proba column."""

    def __init__(self, vocabulary: list[str], forest: RandomForestClassifier):
        self.vocabulary = vocabulary
        self.forest = forest
        self.classes = forest.classes_
        self._vectorizer = _vectorizer({token: i for i, token in enumerate(vocabulary)})

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        # Forests sum tree votes across threads in completion order, which can flip an exact tie
        # between two classes; summing in one thread keeps predictions identical across reruns.
        self.forest.set_params(n_jobs=1)
        return self.forest.predict_proba(self._vectorizer.transform(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.classes[np.argmax(self.predict_proba(texts), axis=1)]

    def save(self, model_dir: str | os.PathLike) -> dict[str, str]:
        """Write the vocabulary (JSON) and the forest (pickle) into a (temporary) model dir.

        Returns each file's sha256, for `load` to check.
        """
        model_dir = Path(model_dir)
        vocabulary = json.dumps(self.vocabulary, ensure_ascii=False) + "\n"
        (model_dir / VOCABULARY_FILE).write_text(vocabulary, encoding="utf-8")
        (model_dir / FOREST_FILE).write_bytes(pickle.dumps(self.forest, protocol=pickle.HIGHEST_PROTOCOL))
        return {name: _sha256(model_dir / name) for name in (VOCABULARY_FILE, FOREST_FILE)}


def train(
    texts: Sequence[str], labels: Sequence[int], config: RandomForestConfig, seed: int, threads: int = 1
) -> RandomForest:
    vectorizer = _vectorizer(max_features=config.max_features_vocab)
    features = vectorizer.fit_transform(texts)
    vocabulary = [str(token) for token in vectorizer.get_feature_names_out()]
    forest = RandomForestClassifier(
        n_estimators=0,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        random_state=seed,
        n_jobs=threads,
        # warm_start draws every tree's seed from random_state in order, so growing the forest in
        # chunks gives exactly the trees of a single fit.
        warm_start=True,
    )
    with tqdm(total=config.n_estimators, desc="random forest", unit="tree") as bar:
        while forest.n_estimators < config.n_estimators:
            step = min(_TREES_PER_STEP, config.n_estimators - forest.n_estimators)
            forest.set_params(n_estimators=forest.n_estimators + step)
            forest.fit(features, labels)
            bar.update(step)
    return RandomForest(vocabulary, forest)


def load(model_dir: str | os.PathLike, sha256: dict[str, str]) -> RandomForest:
    """Load a forest written by `RandomForest.save`, after checking each file against its sha256.

    The forest is a pickle, which can run code when loaded; the checksum (recorded in model.json
    when this project wrote the file) makes sure only our own training output is ever unpickled.
    """
    model_dir = Path(model_dir)
    for name in (VOCABULARY_FILE, FOREST_FILE):
        path = model_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: random forest file missing; rerun the train_baseline stage")
        if _sha256(path) != sha256.get(name):
            raise BadInputError(
                path, None, "expected the file train_baseline wrote (sha256 in model.json), found other bytes"
            )
    vocabulary = json.loads((model_dir / VOCABULARY_FILE).read_text(encoding="utf-8"))
    forest = pickle.loads((model_dir / FOREST_FILE).read_bytes())
    return RandomForest(vocabulary, forest)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
