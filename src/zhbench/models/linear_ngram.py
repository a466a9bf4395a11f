"""Linear SVM over TF-IDF character and word n-grams: the strong non-neural baseline.

A title's features are two TF-IDF blocks side by side, each row L2-normalised per block: n-grams of
its char tokens (one CJK character each, ASCII runs whole) and n-grams of its jieba word tokens. A
LinearSVC (liblinear, one-vs-rest) separates the classes; temperature scaling, fitted by
scikit-learn's CalibratedClassifierCV on out-of-fold decision values of the train split, turns the
decision values into probabilities without changing which class is highest. LinearSVC, not
multinomial LogisticRegression: on thucnews10-33k dev it was more accurate at every C tried and
fitted 7-30x faster (README, "linear_ngram baseline").

The model is stored as data only: the vocabularies as JSON, the IDF weights, coefficients,
intercepts and inverse temperature as safetensors. Training wraps the fitted arrays in the same
`LinearNgram` that `load` builds, so a reloaded model computes bit-identical probabilities.

Served, the model gets char tokens only; it rebuilds the word tokens from them (`words_from_chars`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from zhbench.data.thucnews import read_examples
from zhbench.io import BadInputError
from zhbench.models.search import recordable, tpe_maximize
from zhbench.text import segment
from zhbench.text.segment import char_tokens

log = logging.getLogger(__name__)

CHAR_VOCABULARY_FILE = "char_vocabulary.json"
WORD_VOCABULARY_FILE = "word_vocabulary.json"
CONFIG_FILE = "linear_ngram.json"
WEIGHTS_FILE = "weights.safetensors"
FILES = (CHAR_VOCABULARY_FILE, WORD_VOCABULARY_FILE, CONFIG_FILE, WEIGHTS_FILE)
_TENSORS = ("char_idf", "word_idf", "coef", "intercept", "classes", "inverse_temperature")
# Below this share of dev titles whose rebuilt word tokens equal the processed ones, served answers
# would drift from the evaluated model (thucnews10-33k dev: 99.88 %; with stop words removed: 66 %).
MIN_SERVED_WORD_AGREEMENT = 0.99


@dataclass(frozen=True)
class LinearNgramConfig:
    char_ngram_min: int = 1
    char_ngram_max: int = 3
    word_ngram_min: int = 1
    word_ngram_max: int = 2
    min_df: int = 2             # n-grams in fewer train titles are dropped (both blocks)
    sublinear_tf: bool = True   # tf -> 1 + log(tf)
    C: float = 0.5              # the SVC's inverse regularisation strength
    max_iter: int = 1000        # liblinear iterations
    calibration_folds: int = 5  # out-of-fold decision values the temperature is fitted on

    def __post_init__(self):
        for block in ("char", "word"):
            low, high = getattr(self, f"{block}_ngram_min"), getattr(self, f"{block}_ngram_max")
            if not 1 <= low <= high:
                raise ValueError(f"{block}_ngram_min/max: expected 1 <= min <= max, found {low} and {high}")
        if self.min_df < 1 or self.max_iter < 1:
            raise ValueError(f"min_df and max_iter: expected >= 1, found {self.min_df} and {self.max_iter}")
        if not self.C > 0:
            raise ValueError(f"C: expected > 0, found {self.C}")
        if self.calibration_folds < 2:
            raise ValueError(f"calibration_folds: expected >= 2, found {self.calibration_folds}")


@dataclass(frozen=True)
class Titles:
    """One processed split at both granularities: line i of `chars` and `words` is one title."""

    chars: list[str]
    words: list[str]
    labels: np.ndarray


def read_titles(data_dir: str | os.PathLike, split: str, n_labels: int) -> Titles:
    """<data_dir>/{char,word}/<split>.tsv, checked to hold the same titles with the same labels."""
    paths = [Path(data_dir) / granularity / f"{split}.tsv" for granularity in ("char", "word")]
    chars, words = (read_examples(path, n_labels).examples for path in paths)
    if not chars:
        raise BadInputError(paths[0], None, "expected at least one 'tokens<TAB>label_id' line, found none")
    if len(chars) != len(words):
        raise BadInputError(paths[1], None, f"expected {len(chars)} titles, line-aligned with {paths[0]}, "
                                            f"found {len(words)}")
    for c, w in zip(chars, words):
        if c.label != w.label:
            raise BadInputError(paths[1], w.line, f"expected label {c.label}, as on line {c.line} of {paths[0]} "
                                                  f"(the splits must be line-aligned), found {w.label}")
    return Titles([e.text for e in chars], [e.text for e in words], np.asarray([e.label for e in chars], dtype=np.int64))


def title_from_chars(char_string: str) -> str:
    """A title that `char_tokens` splits into exactly these space-separated char tokens.

    Tokens are joined without spaces except where two would merge into one (`iPhone 6`, `U.S. Steel`);
    the title's other spaces are lost, so jieba may split it differently from the original title.
    """
    tokens = char_string.split()
    title = ""
    for i, token in enumerate(tokens):
        joined = title + token
        title = joined if char_tokens(joined) == tokens[:i + 1] else f"{title} {token}"
    return title


def words_from_chars(char_string: str) -> str:
    """The word tokens (space-joined, as preprocess writes them) of the title the char tokens spell."""
    return " ".join(segment(title_from_chars(char_string), "word"))


def served_word_agreement(titles: Titles) -> dict[str, int]:
    """How many titles' rebuilt word tokens equal their processed ones: what serving changes."""
    identical = sum(words_from_chars(c) == w for c, w in zip(titles.chars, titles.words))
    return {"titles": len(titles.chars), "identical": identical}


def check_served_words(titles: Titles, where: str) -> dict[str, int]:
    """`served_word_agreement`, refused below MIN_SERVED_WORD_AGREEMENT (e.g. stop words removed)."""
    agreement = served_word_agreement(titles)
    share = agreement["identical"] / agreement["titles"]
    if share < MIN_SERVED_WORD_AGREEMENT:
        raise ValueError(
            f"{where}: only {agreement['identical']} of {agreement['titles']} titles' word tokens are what jieba gives "
            f"for the title their char tokens spell ({share:.2%} < {MIN_SERVED_WORD_AGREEMENT:.0%}); served answers "
            "would differ from the evaluated ones. linear_ngram needs preprocess.remove_stopwords: false"
        )
    return agreement


def _vectorizer(ngram_range: tuple[int, int], sublinear_tf: bool, min_df: int = 1,
                vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    # Tokens are already split (space-joined): split on spaces only, never re-tokenise or lowercase.
    return TfidfVectorizer(token_pattern=r"[^ ]+", lowercase=False, ngram_range=ngram_range, min_df=min_df,
                           sublinear_tf=sublinear_tf, vocabulary=vocabulary, dtype=np.float64)


def _svc(config: LinearNgramConfig, seed: int) -> LinearSVC:
    # liblinear's dual coordinate descent visits samples in a random order: seeded, it repeats.
    return LinearSVC(C=config.C, max_iter=config.max_iter, random_state=seed)


class LinearNgram:
    """A fitted model. Column j of `predict_proba` is label id `classes[j]`."""

    def __init__(self, config: LinearNgramConfig, char_vocabulary: list[str], word_vocabulary: list[str],
                 tensors: Mapping[str, np.ndarray]):
        missing = sorted(set(_TENSORS) - set(tensors))
        if missing:
            raise ValueError(f"missing tensors {missing}")
        self.config = config
        self.char_vocabulary, self.word_vocabulary = list(char_vocabulary), list(word_vocabulary)
        self.tensors = {name: np.ascontiguousarray(tensors[name]) for name in _TENSORS}
        t = self.tensors
        n_classes, n_features = len(t["classes"]), len(self.char_vocabulary) + len(self.word_vocabulary)
        expected = {"char_idf": (len(self.char_vocabulary),), "word_idf": (len(self.word_vocabulary),),
                    "coef": (n_classes, n_features), "intercept": (n_classes,), "inverse_temperature": (1,)}
        for name, shape in expected.items():
            if t[name].shape != shape or t[name].dtype != np.float64:
                raise ValueError(f"tensor {name}: expected float64 {shape}, found {t[name].dtype} {t[name].shape}")
        if n_classes < 2 or t["classes"].dtype != np.int64 or np.any(np.diff(t["classes"]) <= 0) or t["classes"][0] < 0:
            raise ValueError(f"tensor classes: expected >= 2 increasing int64 label ids, found {t['classes']}")
        self.classes = t["classes"]
        self._char = self._rebuilt(self.char_vocabulary, t["char_idf"], (config.char_ngram_min, config.char_ngram_max))
        self._word = self._rebuilt(self.word_vocabulary, t["word_idf"], (config.word_ngram_min, config.word_ngram_max))

    def _rebuilt(self, vocabulary: list[str], idf: np.ndarray, ngram_range: tuple[int, int]) -> TfidfVectorizer:
        index = {term: i for i, term in enumerate(vocabulary)}
        if len(index) != len(vocabulary) or not all(isinstance(term, str) for term in vocabulary):
            raise ValueError("expected a vocabulary of distinct strings")
        vectorizer = _vectorizer(ngram_range, self.config.sublinear_tf, vocabulary=index)
        vectorizer.idf_ = idf
        return vectorizer

    def features(self, chars: Sequence[str], words: Sequence[str]) -> sp.csr_matrix:
        if len(chars) != len(words):
            raise ValueError(f"expected line-aligned char and word token strings, found {len(chars)} and {len(words)}")
        return sp.hstack([self._char.transform(chars), self._word.transform(words)], format="csr")

    def decision_function(self, chars: Sequence[str], words: Sequence[str]) -> np.ndarray:
        return self.features(chars, words) @ self.tensors["coef"].T + self.tensors["intercept"]

    def predict_proba(self, chars: Sequence[str], words: Sequence[str]) -> np.ndarray:
        """(n, len(classes)) probabilities of each title, given its char and word token strings."""
        return softmax(self.tensors["inverse_temperature"][0] * self.decision_function(chars, words), axis=1)

    def predict(self, chars: Sequence[str], words: Sequence[str]) -> np.ndarray:
        # The SVC's own rule (what the search scored); the probabilities rank the classes the same way.
        return self.classes[np.argmax(self.decision_function(chars, words), axis=1)]

    def save(self, model_dir: str | os.PathLike) -> dict[str, str]:
        """Write the model files into a (temporary) model dir; return each file's sha256 for `load`."""
        from safetensors.numpy import save

        model_dir = Path(model_dir)
        for name, vocabulary in ((CHAR_VOCABULARY_FILE, self.char_vocabulary), (WORD_VOCABULARY_FILE, self.word_vocabulary)):
            (model_dir / name).write_text(json.dumps(vocabulary, ensure_ascii=False) + "\n", encoding="utf-8")
        (model_dir / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2, sort_keys=True) + "\n",
                                             encoding="utf-8")
        (model_dir / WEIGHTS_FILE).write_bytes(save(self.tensors))
        return {name: _sha256(model_dir / name) for name in FILES}


def train(titles: Titles, config: LinearNgramConfig, seed: int) -> LinearNgram:
    classes, counts = np.unique(titles.labels, return_counts=True)
    if len(classes) < 2 or counts.min() < config.calibration_folds:
        raise ValueError(f"expected >= 2 classes with >= calibration_folds ({config.calibration_folds}) titles each, "
                         f"found counts {dict(zip(classes.tolist(), counts.tolist()))}")
    char = _vectorizer((config.char_ngram_min, config.char_ngram_max), config.sublinear_tf, config.min_df)
    word = _vectorizer((config.word_ngram_min, config.word_ngram_max), config.sublinear_tf, config.min_df)
    features = sp.hstack([char.fit_transform(titles.chars), word.fit_transform(titles.words)], format="csr")
    # ensemble=False: one SVC fitted on the whole train split (the one the search scored), calibrated
    # on the stratified folds' out-of-fold decision values.
    calibrated = CalibratedClassifierCV(_svc(config, seed), method="temperature", cv=config.calibration_folds,
                                        ensemble=False).fit(features, titles.labels)
    fitted = calibrated.calibrated_classifiers_[0]
    svc = fitted.estimator
    tensors = {
        "char_idf": char.idf_, "word_idf": word.idf_,
        "coef": svc.coef_, "intercept": svc.intercept_,
        "classes": svc.classes_.astype(np.int64),
        "inverse_temperature": np.asarray([fitted.calibrators[0].beta_], dtype=np.float64),
    }
    return LinearNgram(config, _terms(char), _terms(word), tensors)


def _terms(vectorizer: TfidfVectorizer) -> list[str]:
    return [str(term) for term in vectorizer.get_feature_names_out()]


def load(model_dir: str | os.PathLike, sha256: Mapping[str, str] | None = None) -> LinearNgram:
    """Load a model written by `LinearNgram.save`; give `sha256` (from model.json) to check each file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    model_dir = Path(model_dir)
    for name in FILES:
        path = model_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: linear_ngram model file missing; rerun the train_baseline stage")
        if sha256 is not None and _sha256(path) != sha256.get(name):
            raise BadInputError(path, None, "expected the file train_baseline wrote (sha256 in model.json), found other bytes")
    char_vocabulary, word_vocabulary = (_read_json(model_dir / name, list) for name in (CHAR_VOCABULARY_FILE, WORD_VOCABULARY_FILE))
    options = _read_json(model_dir / CONFIG_FILE, dict)
    try:
        config = LinearNgramConfig(**options)
    except (TypeError, ValueError) as err:
        raise BadInputError(model_dir / CONFIG_FILE, None, f"expected LinearNgramConfig fields, found {options} ({err})") from err
    try:
        tensors = load_file(str(model_dir / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as err:
        raise BadInputError(model_dir / WEIGHTS_FILE, None, f"expected a safetensors file, cannot read it ({err})") from err
    try:
        return LinearNgram(config, char_vocabulary, word_vocabulary, tensors)
    except ValueError as err:
        raise BadInputError(model_dir, None, f"files do not make one linear_ngram model: {err}") from err


def _read_json(path: Path, kind: type) -> Any:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadInputError(path, None, f"expected a JSON {kind.__name__}, cannot parse it ({err})") from err
    if not isinstance(value, kind):
        raise BadInputError(path, None, f"expected a JSON {kind.__name__}, found {type(value).__name__}")
    return value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------
# Seeded search on dev

SEARCHABLE = ("char_ngram_min", "char_ngram_max", "word_ngram_min", "word_ngram_max", "min_df", "C")


@dataclass(frozen=True)
class SearchResult:
    best_config: LinearNgramConfig
    best_trial: int
    trials: list[dict[str, Any]]  # per trial: number, the searched args, n_features, dev_accuracy


class _Blocks:
    """TF-IDF blocks of train and dev, built once per (granularity, n-gram range, min_df) for all trials."""

    def __init__(self, train: Titles, dev: Titles, sublinear_tf: bool):
        self._texts = {"char": (train.chars, dev.chars), "word": (train.words, dev.words)}
        self._sublinear_tf = sublinear_tf
        self._built: dict[tuple, tuple[sp.csr_matrix, sp.csr_matrix]] = {}

    def block(self, granularity: str, ngram_range: tuple[int, int], min_df: int):
        key = (granularity, ngram_range, min_df)
        if key not in self._built:
            train_texts, dev_texts = self._texts[granularity]
            vectorizer = _vectorizer(ngram_range, self._sublinear_tf, min_df)
            self._built[key] = (vectorizer.fit_transform(train_texts), vectorizer.transform(dev_texts))
        return self._built[key]

    def features(self, config: LinearNgramConfig) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        char = self.block("char", (config.char_ngram_min, config.char_ngram_max), config.min_df)
        word = self.block("word", (config.word_ngram_min, config.word_ngram_max), config.min_df)
        return sp.hstack([char[0], word[0]], format="csr"), sp.hstack([char[1], word[1]], format="csr")


def search(
    train: Titles,
    dev: Titles,
    base: LinearNgramConfig,
    search_space: Mapping[str, Sequence[int | float]],
    trials: int,
    seed: int,
) -> SearchResult:
    """Pick the config with the best dev accuracy among `trials` seeded TPE samples of `search_space`.

    `search_space` maps a SEARCHABLE field to [low, high]: integer fields sample integers, C samples
    on a log scale (it spans orders of magnitude). Trials score the SVC alone: temperature scaling
    keeps its argmax, so a trial's dev accuracy is the calibrated model's.
    """
    import optuna

    _check_space(base, search_space)
    blocks = _Blocks(train, dev, base.sublinear_tf)

    def suggest(trial: optuna.Trial) -> LinearNgramConfig:
        for name, (low, high) in search_space.items():
            if name == "C":
                trial.suggest_float(name, float(low), float(high), log=True)
            else:
                trial.suggest_int(name, low, high)
        return replace(base, **recordable(trial.params))

    def dev_accuracy(trial: optuna.Trial) -> float:
        config = suggest(trial)
        train_features, dev_features = blocks.features(config)
        svc = _svc(config, seed).fit(train_features, train.labels)
        accuracy = float(np.mean(svc.predict(dev_features) == dev.labels))
        trial.set_user_attr("n_features", int(train_features.shape[1]))
        log.info("trial %d %s: %d features, dev accuracy %.4f", trial.number, trial.params, train_features.shape[1], accuracy)
        return accuracy

    study = tpe_maximize(dev_accuracy, trials, seed, "linear_ngram search")
    best = study.best_trial
    return SearchResult(
        best_config=replace(base, **recordable(best.params)),
        best_trial=best.number,
        trials=[{"number": t.number, "args": recordable(t.params), "n_features": t.user_attrs["n_features"],
                 "dev_accuracy": t.value} for t in study.trials],
    )


def _check_space(base: LinearNgramConfig, search_space: Mapping[str, Sequence[int | float]]) -> None:
    """Every bound pair is [low, high] of a SEARCHABLE field, and every sample makes a valid config."""
    for name, bounds in search_space.items():
        if name not in SEARCHABLE or len(bounds) != 2 or not bounds[0] <= bounds[1]:
            raise ValueError(f"search_space.{name}: expected one of {list(SEARCHABLE)} with [low, high], found {bounds}")
        if name != "C" and not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            raise ValueError(f"search_space.{name}: expected integer bounds, found {bounds}")
    for block in ("char", "word"):
        low = search_space.get(f"{block}_ngram_min", [getattr(base, f"{block}_ngram_min")] * 2)
        high = search_space.get(f"{block}_ngram_max", [getattr(base, f"{block}_ngram_max")] * 2)
        if low[1] > high[0]:
            raise ValueError(f"search_space: {block}_ngram_min may reach {low[1]} but {block}_ngram_max may be "
                             f"as low as {high[0]}; every sample needs min <= max")
    # The other fields' limits are lower bounds (min_df >= 1, C > 0): checking the lowest corner covers all samples.
    replace(base, **{name: bounds[0] for name, bounds in search_space.items()})


# --------------------------------------------------------------------------------------------------
# Serving (zhbench.predict kind "linear_ngram")


class LinearNgramPredictor:
    """The Predictor of a linear_ngram model dir: char token strings in, the word tokens rebuilt from them."""

    granularity = "char"

    def __init__(self, model: LinearNgram, labels: list[str]):
        if int(model.classes.max()) >= len(labels):
            raise ValueError(f"the model predicts label id {int(model.classes.max())}, "
                             f"but there are only {len(labels)} label names")
        self._model = model
        self.labels = labels

    def predict_proba(self, token_strings: list[str]) -> np.ndarray:
        out = np.zeros((len(token_strings), len(self.labels)), dtype=np.float64)
        if token_strings:
            words = [words_from_chars(s) for s in token_strings]
            out[:, self._model.classes] = self._model.predict_proba(token_strings, words)
        return out


def load_predictor(model_dir: Path, labels: list[str] | None):
    """predict.py loader for kind "linear_ngram": a train_baseline dir with its model.json."""
    from zhbench.io import read_json
    from zhbench.predictors import ModelLoadError

    meta = read_json(model_dir / "model.json")  # load_predictor's detect_kind has read it as a JSON object
    if labels is None:
        raise ModelLoadError(f"{model_dir}: a linear_ngram model dir holds no label names; give the dataset's labels.txt")
    sha256 = meta.get("sha256")
    if not isinstance(sha256, dict) or set(sha256) != set(FILES):
        raise ModelLoadError(f"{model_dir / 'model.json'}: expected the sha256 of {list(FILES)}, as train_baseline writes")
    if meta.get("granularity") != LinearNgramPredictor.granularity:
        raise ModelLoadError(f"{model_dir / 'model.json'}: granularity {meta.get('granularity')!r}, expected 'char'")
    predictor = LinearNgramPredictor(load(model_dir, sha256), labels)
    return predictor, {"name": meta.get("model", model_dir.name), "type": "linear_ngram", "args": meta.get("args", {})}
