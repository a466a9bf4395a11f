"""The linear n-gram baseline on tiny data: safe storage, exact reloads, a repeatable search, the
served path equal to the offline one, and clear errors."""
from __future__ import annotations

import importlib.util
import json
import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import LinearSVC

from zhbench.io import BadInputError, read_json
from zhbench.models import linear_ngram
from zhbench.predict import ModelLoadError, load_predictor
from zhbench.predictors import TextClassifier
from zhbench.preprocess import PreprocessConfig, preprocess
from zhbench.text.segment import char_tokens

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
LABELS = ["finance", "sports", "game"]
# ASCII runs (A股, NBA, iPhone 6s, 3.5%) exercise the char tokens' whole-run rule and the rebuilt titles.
CLASS_WORDS = [["股票", "基金", "银行", "利率", "A股", "降息3.5%"], ["足球", "篮球", "比赛", "冠军", "NBA"],
               ["游戏", "玩家", "手游", "电竞", "iPhone 6s"]]
SHARED_WORDS = ["今天", "我们", "中国", "市场", "发布", "最新"]
CONFIG = linear_ngram.LinearNgramConfig(char_ngram_max=2, word_ngram_max=2, min_df=1, C=0.5, calibration_folds=3)
SPACE = {"char_ngram_max": [1, 3], "min_df": [1, 2], "C": [0.05, 5.0]}
PARAMS = {
    "profile": "test",
    "seed": 7,
    "data": {"variant": "tiny"},
    "baselines": {
        "models": ["linear_ngram"],
        "linear_ngram": {"type": "linear_ngram", "granularity": "char", "trials": 3, "search_space": SPACE,
                         "calibration_folds": 3},
    },
}


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_baseline, evaluate_baseline = _stage("train_baseline"), _stage("evaluate_baseline")


def _title(rng: random.Random, label: int) -> str:
    words = rng.sample(CLASS_WORDS[label], 2) + rng.sample(SHARED_WORDS, 2)
    if rng.random() < 0.25:  # a word of another class keeps the classes from being trivially separable
        words.append(rng.choice(CLASS_WORDS[(label + 1) % 3]))
    rng.shuffle(words)
    return "".join(words)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Raw titles, the preprocess stage's char and word splits of them, and a params.yaml."""
    root = tmp_path_factory.mktemp("linear_ngram")
    raw = root / "raw"
    raw.mkdir()
    rng = random.Random(0)
    (raw / "class.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    for split, n in (("train", 60), ("dev", 30), ("test", 30)):
        rows = "".join(f"{_title(rng, i % 3)}\t{i % 3}\n" for i in range(n))
        (raw / f"{split}.txt").write_text(rows, encoding="utf-8")
    preprocess(raw, root / "data", PreprocessConfig())
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, allow_unicode=True), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def splits(workspace) -> dict[str, linear_ngram.Titles]:
    return {s: linear_ngram.read_titles(workspace / "data", s, len(LABELS)) for s in ("train", "dev", "test")}


@pytest.fixture(scope="module")
def model(splits) -> linear_ngram.LinearNgram:
    return linear_ngram.train(splits["train"], CONFIG, seed=3)


@pytest.fixture(scope="module")
def stage_model_dir(workspace, tmp_path_factory) -> Path:
    """A model dir as the train_baseline stage writes it."""
    model_dir = tmp_path_factory.mktemp("stage") / "linear_ngram"
    assert train(workspace, model_dir) == 0
    return model_dir


def train(root: Path, out: Path, params: Path | None = None) -> int:
    return train_baseline.main(["--params", str(params or root / "params.yaml"), "--model", "linear_ngram",
                                "--data", str(root / "data"), "--out", str(out),
                                "--timing", str(out.parent / f"{out.name}_train_timing.json")])


def evaluate(root: Path, model_dir: Path, out: Path) -> int:
    return evaluate_baseline.main([
        "--params", str(root / "params.yaml"), "--model", "linear_ngram", "--data", str(root / "data"),
        "--model-dir", str(model_dir), "--metrics", str(out / "linear_ngram.json"),
        "--train-timing", str(model_dir.parent / f"{model_dir.name}_train_timing.json"),
        "--timing", str(out / "linear_ngram_timing.json"), "--confusion", str(out / "linear_ngram_confusion.csv"),
        "--figure", str(out / "confusion_linear_ngram.png"),
    ])


def test_learns_the_tiny_task(model, splits):
    test = splits["test"]
    probs = model.predict_proba(test.chars, test.words)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert np.mean(model.predict(test.chars, test.words) == test.labels) > 0.8
    # Temperature scaling keeps the SVC's ranking of the classes.
    np.testing.assert_array_equal(model.classes[probs.argmax(axis=1)], model.predict(test.chars, test.words))


def test_probabilities_are_scikit_learns_calibrated_svc(model, splits):
    train_split, test = splits["train"], splits["test"]
    svc = LinearSVC(C=CONFIG.C, max_iter=CONFIG.max_iter, random_state=3)
    calibrated = CalibratedClassifierCV(svc, method="temperature", cv=CONFIG.calibration_folds, ensemble=False)
    calibrated.fit(model.features(train_split.chars, train_split.words), train_split.labels)
    expected = calibrated.predict_proba(model.features(test.chars, test.words))
    np.testing.assert_allclose(model.predict_proba(test.chars, test.words), expected, rtol=1e-9, atol=1e-12)


def test_reload_gives_bit_identical_probabilities(model, splits, tmp_path):
    sha256 = model.save(tmp_path)
    test = splits["test"]
    reloaded = linear_ngram.load(tmp_path, sha256)
    assert np.array_equal(reloaded.predict_proba(test.chars, test.words), model.predict_proba(test.chars, test.words))
    assert reloaded.char_vocabulary == model.char_vocabulary and reloaded.config == model.config


def test_only_json_and_safetensors_are_written(model, tmp_path):
    model.save(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(linear_ngram.FILES)
    for path in tmp_path.iterdir():
        assert not path.read_bytes().startswith(b"\x80")  # pickle protocol 2+ header
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    assert set(load_file(str(tmp_path / linear_ngram.WEIGHTS_FILE))) == {
        "char_idf", "word_idf", "coef", "intercept", "classes", "inverse_temperature"}


def test_same_inputs_give_byte_identical_files(splits, model, tmp_path):
    again = linear_ngram.train(splits["train"], CONFIG, seed=3)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    assert model.save(first) == again.save(second)
    assert {p.name: p.read_bytes() for p in first.iterdir()} == {p.name: p.read_bytes() for p in second.iterdir()}


def test_search_is_deterministic(splits):
    runs = [linear_ngram.search(splits["train"], splits["dev"], CONFIG, SPACE, trials=4, seed=5) for _ in range(2)]
    assert runs[0] == runs[1]
    result = runs[0]
    assert [t["number"] for t in result.trials] == [0, 1, 2, 3]
    best = result.trials[result.best_trial]
    assert best["dev_accuracy"] == max(t["dev_accuracy"] for t in result.trials)
    assert replace(CONFIG, **best["args"]) == result.best_config
    # the recorded dev accuracy is the trained model's
    dev = splits["dev"]
    trained = linear_ngram.train(splits["train"], result.best_config, seed=5)
    assert float(np.mean(trained.predict(dev.chars, dev.words) == dev.labels)) == best["dev_accuracy"]


@pytest.mark.parametrize("space, message", [
    ({"sublinear_tf": [0, 1]}, "search_space.sublinear_tf: expected one of"),
    ({"C": [1.0]}, r"search_space.C: expected one of .* \[low, high\]"),
    ({"min_df": [1.5, 3]}, "search_space.min_df: expected integer bounds"),
    ({"char_ngram_min": [1, 3]}, "char_ngram_min may reach 3 but char_ngram_max may be as low as 2"),
    ({"C": [0.0, 1.0]}, "C: expected > 0"),
])
def test_bad_search_space_is_refused(splits, space, message):
    with pytest.raises(ValueError, match=message):
        linear_ngram.search(splits["train"], splits["dev"], CONFIG, space, trials=1, seed=0)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="char_ngram_min/max: expected 1 <= min <= max, found 3 and 2"):
        linear_ngram.LinearNgramConfig(char_ngram_min=3, char_ngram_max=2)
    with pytest.raises(ValueError, match="calibration_folds: expected >= 2"):
        linear_ngram.LinearNgramConfig(calibration_folds=1)


def test_too_few_titles_per_class_for_calibration(splits):
    few = splits["train"]
    keep = np.flatnonzero(few.labels != 2).tolist() + np.flatnonzero(few.labels == 2)[:2].tolist()
    titles = linear_ngram.Titles([few.chars[i] for i in keep], [few.words[i] for i in keep], few.labels[keep])
    with pytest.raises(ValueError, match=r"calibration_folds \(3\) titles each, found counts \{0: 20, 1: 20, 2: 2\}"):
        linear_ngram.train(titles, CONFIG, seed=0)


def test_misaligned_splits_name_file_and_line(workspace, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(workspace / "data", data)
    word = data / "word" / "dev.tsv"
    lines = word.read_text(encoding="utf-8").splitlines()
    text, label = lines[4].split("\t")
    lines[4] = f"{text}\t{(int(label) + 1) % 3}"
    word.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=rf"word/dev.tsv:5: expected label {label}, as on line 5 of .*char/dev.tsv"):
        linear_ngram.read_titles(data, "dev", len(LABELS))
    word.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="word/dev.tsv: expected 30 titles, line-aligned with .* found 29"):
        linear_ngram.read_titles(data, "dev", len(LABELS))


def test_damaged_model_files_are_clear_errors(model, tmp_path):
    sha256 = model.save(tmp_path)
    weights = tmp_path / linear_ngram.WEIGHTS_FILE
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(BadInputError, match="weights.safetensors: expected the file train_baseline wrote"):
        linear_ngram.load(tmp_path, sha256)
    with pytest.raises(BadInputError, match="weights.safetensors: expected a safetensors file"):
        linear_ngram.load(tmp_path)
    weights.write_bytes(good)

    vocabulary = tmp_path / linear_ngram.CHAR_VOCABULARY_FILE
    vocabulary.write_text(json.dumps(model.char_vocabulary[:-1], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(BadInputError, match=r"do not make one linear_ngram model: tensor char_idf: expected float64"):
        linear_ngram.load(tmp_path)
    vocabulary.write_text("{", encoding="utf-8")
    with pytest.raises(BadInputError, match="char_vocabulary.json: expected a JSON list, cannot parse it"):
        linear_ngram.load(tmp_path)
    vocabulary.unlink()
    with pytest.raises(FileNotFoundError, match="char_vocabulary.json: linear_ngram model file missing"):
        linear_ngram.load(tmp_path)


def test_rebuilt_titles_keep_the_char_tokens():
    for title in ["iPhone 6s发布", "U.S. Steel第二季亏损", "降息3.5%", "A + H股", "中国 市场", "NBA"]:
        tokens = " ".join(char_tokens(title))
        assert " ".join(char_tokens(linear_ngram.title_from_chars(tokens))) == tokens, title
    assert linear_ngram.title_from_chars("i Phone 6s 发 布") == "i Phone 6s发布"


def test_served_predictions_equal_offline_ones(workspace, splits, stage_model_dir):
    model_dir = stage_model_dir
    test = splits["test"]
    offline = linear_ngram.load(model_dir, read_json(model_dir / "model.json")["sha256"])
    # the tiny titles have spaces only inside ASCII runs, which the rebuilt titles keep
    assert linear_ngram.served_word_agreement(test) == {"titles": 30, "identical": 30}

    predictor, info = load_predictor(model_dir, LABELS)
    assert info.kind == "linear_ngram" and predictor.granularity == "char"
    assert np.array_equal(predictor.predict_proba(test.chars), offline.predict_proba(test.chars, test.words))
    one_at_a_time = np.concatenate([predictor.predict_proba([c]) for c in test.chars])
    assert np.array_equal(one_at_a_time, predictor.predict_proba(test.chars))

    raw = [line.split("\t")[0] for line in (workspace / "raw" / "test.txt").read_text(encoding="utf-8").splitlines()]
    served = [p.label_id for p in TextClassifier(predictor).predict(raw, k=1)]
    assert served == offline.predict(test.chars, test.words).tolist()


def test_predictor_refuses_dirs_it_cannot_check(stage_model_dir, tmp_path):
    model_dir = tmp_path / "linear_ngram"
    shutil.copytree(stage_model_dir, model_dir)
    with pytest.raises(ModelLoadError, match="holds no label names"):
        load_predictor(model_dir)
    with pytest.raises(ModelLoadError, match="label id 2, but there are only 2 label names"):
        load_predictor(model_dir, LABELS[:2])
    meta = read_json(model_dir / "model.json")
    meta["sha256"].pop(linear_ngram.WEIGHTS_FILE)
    (model_dir / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="expected the sha256 of"):
        load_predictor(model_dir, LABELS)


def test_stage_reruns_are_byte_identical(workspace, tmp_path):
    outputs = []
    for run in ("first", "second"):
        model_dir = tmp_path / run / "models" / "linear_ngram"
        assert train(workspace, model_dir) == 0
        assert evaluate(workspace, model_dir, tmp_path / run / "metrics") == 0
        files = [*model_dir.iterdir(), *(tmp_path / run / "metrics").iterdir()]
        outputs.append({p.name: p.read_bytes() for p in files if not p.name.endswith("timing.json")})
    assert outputs[0] == outputs[1]

    metrics = read_json(tmp_path / "first" / "metrics" / "linear_ngram.json")
    search = metrics["search"]
    best = search["trials"][search["best_trial"]]
    assert {k: metrics["args"][k] for k in best["args"]} == best["args"]  # exactly the trained args
    assert metrics["dev"]["accuracy"] == best["dev_accuracy"]
    assert metrics["test"]["n_samples"] == 30 and metrics["test"]["accuracy"] > 0.8
    description = read_json(tmp_path / "first" / "models" / "linear_ngram" / "model.json")
    assert description["served_word_split"] == {"split": "dev", "titles": 30, "identical": 30}
    timing = read_json(tmp_path / "first" / "metrics" / "linear_ngram_timing.json")
    assert timing["search_seconds"] > 0 and timing["train_seconds"] > 0


def test_word_granularity_is_refused(workspace, tmp_path, capsys):
    params = yaml.safe_load((workspace / "params.yaml").read_text(encoding="utf-8"))
    params["baselines"]["linear_ngram"]["granularity"] = "word"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    assert train(workspace, tmp_path / "model", tmp_path / "params.yaml") == 1
    assert "baselines.linear_ngram.granularity: expected char" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def test_stop_word_removal_is_refused(splits):
    dev = splits["dev"]
    without_shared = [" ".join(w for w in words.split() if w not in SHARED_WORDS) for words in dev.words]
    with pytest.raises(ValueError, match="needs preprocess.remove_stopwords: false"):
        linear_ngram.check_served_words(linear_ngram.Titles(dev.chars, without_shared, dev.labels), "data")
