"""Baseline stages end to end on tiny synthetic data: reruns byte-identical, atomic, clear errors."""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.ensemble import RandomForestClassifier

from zhbench.evaluate import read_split
from zhbench.io import BadInputError, read_json
from zhbench.models import fasttext_model, random_forest

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
LABELS = ["finance", "sports", "game"]
# Each class has its own words; shared words and a 20% chance of a word of another class keep it
# from being trivially separable.
CLASS_WORDS = [["股票", "基金", "银行", "利率"], ["足球", "篮球", "比赛", "冠军"], ["游戏", "玩家", "手游", "电竞"]]
SHARED_WORDS = ["今天", "我们", "中国", "市场", "发布", "最新"]
PARAMS = {
    "profile": "test",
    "seed": 7,
    "data": {"variant": "tiny"},
    "baselines": {
        "models": ["random_forest", "fasttext_char", "fasttext_char_tuned"],
        "random_forest": {"type": "random_forest", "granularity": "word", "max_features_vocab": 12,
                          "n_estimators": 15, "max_depth": None, "min_samples_leaf": 1, "threads": 2},
        "fasttext_char": {"type": "fasttext", "granularity": "char", "epoch": 5, "lr": 0.5, "dim": 10,
                          "wordNgrams": 2, "minCount": 1, "bucket": 1000, "loss": "softmax"},
        "fasttext_char_tuned": {"type": "fasttext", "granularity": "char", "trials": 3, "bucket": 1000,
                                "loss": "softmax", "search_space": {"epoch": [2, 10], "lr": [0.05, 1.0],
                                                                    "dim": [5, 20], "wordNgrams": [1, 2]}},
    },
}


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_baseline, evaluate_baseline = _stage("train_baseline"), _stage("evaluate_baseline")


def _title(rng: random.Random, label: int) -> list[str]:
    words = rng.sample(CLASS_WORDS[label], 2) + rng.sample(SHARED_WORDS, 2)
    if rng.random() < 0.2:
        words.append(rng.choice(CLASS_WORDS[(label + 1) % 3]))
    rng.shuffle(words)
    return words


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """data/ in the preprocess stage's layout (60 lines per split) and a params.yaml."""
    root = tmp_path_factory.mktemp("baselines")
    data = root / "data"
    rng = random.Random(0)
    for granularity in ("char", "word"):
        (data / granularity).mkdir(parents=True)
    (data / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    for split in ("train", "dev", "test"):
        rows = [(_title(rng, i % 3), i % 3) for i in range(60)]
        for granularity in ("char", "word"):
            tokens = [[c for w in words for c in w] if granularity == "char" else words for words, _ in rows]
            with open(data / granularity / f"{split}.tsv", "w", encoding="utf-8") as tsv, \
                    open(data / granularity / f"{split}.ft.txt", "w", encoding="utf-8") as ft:
                for toks, (_, label) in zip(tokens, rows):
                    tsv.write(f"{' '.join(toks)}\t{label}\n")
                    ft.write(f"__label__{label} {' '.join(toks)}\n")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, allow_unicode=True), encoding="utf-8")
    return root


def train(root: Path, model: str, out: Path) -> int:
    return train_baseline.main(["--params", str(root / "params.yaml"), "--model", model,
                                "--data", str(root / "data"), "--out", str(out),
                                "--timing", str(out.parent / f"{out.name}_train_timing.json")])


def evaluate(root: Path, model: str, model_dir: Path, out: Path) -> int:
    return evaluate_baseline.main([
        "--params", str(root / "params.yaml"), "--model", model, "--data", str(root / "data"),
        "--model-dir", str(model_dir), "--metrics", str(out / f"{model}.json"),
        "--train-timing", str(model_dir.parent / f"{model_dir.name}_train_timing.json"),
        "--timing", str(out / f"{model}_timing.json"), "--confusion", str(out / f"{model}_confusion.csv"),
        "--figure", str(out / f"confusion_{model}.png"),
    ])


@pytest.mark.parametrize("model", ["random_forest", "fasttext_char", "fasttext_char_tuned"])
def test_train_and_evaluate_reruns_are_byte_identical(workspace, tmp_path, model):
    outputs = []
    for run in ("first", "second"):
        model_dir = tmp_path / run / "models" / model
        assert train(workspace, model, model_dir) == 0
        assert evaluate(workspace, model, model_dir, tmp_path / run / "metrics") == 0
        outputs.append({p.name: p.read_bytes() for p in (tmp_path / run / "metrics").iterdir()
                        if not p.name.endswith("_timing.json")})
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 3  # metrics JSON, confusion CSV, heat map

    metrics = read_json(tmp_path / "first" / "metrics" / f"{model}.json")
    assert metrics["model"] == model and metrics["profile"] == "test" and metrics["variant"] == "tiny"
    assert metrics["test"]["n_samples"] == 60 and metrics["test"]["accuracy"] > 0.7
    timing = read_json(tmp_path / "first" / "metrics" / f"{model}_timing.json")
    assert timing["train_seconds"] > 0 and set(timing["predict_ms_per_sample"]) == {"dev", "test"}
    if model == "fasttext_char_tuned":
        search = metrics["search"]
        assert [t["number"] for t in search["trials"]] == [0, 1, 2]
        best = search["trials"][search["best_trial"]]
        assert best["dev_accuracy"] == max(t["dev_accuracy"] for t in search["trials"])
        assert {k: metrics["args"][k] for k in best["args"]} == best["args"]  # exactly the trained args


def test_forest_grown_in_chunks_equals_one_fit(workspace):
    texts, labels = read_split(workspace / "data" / "word" / "train.tsv", 3)
    config = random_forest.RandomForestConfig(max_features_vocab=12, n_estimators=25)
    chunked = random_forest.train(texts, labels, config, seed=3, threads=1)
    features = chunked._vectorizer.transform(texts)
    one_fit = RandomForestClassifier(n_estimators=25, random_state=3).fit(features, labels)
    np.testing.assert_array_equal(chunked.predict_proba(texts), one_fit.predict_proba(features))


def test_fasttext_trains_identically_again_in_one_process(workspace):
    # Regression: this fastText wheel trains from uninitialised memory unless allocations are
    # zeroed, so later runs in one process (after other allocations) used to differ or hit NaN.
    train_file = workspace / "data" / "char" / "train.ft.txt"
    args = fasttext_model.FastTextArgs(epoch=5, lr=0.1, dim=10, bucket=1000, wordNgrams=2)
    matrices = []
    for _ in range(4):
        matrices.append(fasttext_model.train(train_file, args, seed=1)._model.get_input_matrix().copy())
        del [np.random.rand(5000) for _ in range(50)][:]  # churn the heap between runs
    for matrix in matrices[1:]:
        np.testing.assert_array_equal(matrix, matrices[0])


def test_unknown_model_is_a_clear_error(workspace, tmp_path, capsys):
    assert train(workspace, "svm", tmp_path / "svm") == 1
    assert "unknown model 'svm'" in capsys.readouterr().err
    assert not (tmp_path / "svm").exists()


def test_bad_training_row_leaves_no_model_dir(workspace, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "word").mkdir(parents=True)
    (data / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    (data / "word" / "train.tsv").write_text("股票 基金\t0\n足球 比赛\n", encoding="utf-8")
    code = train_baseline.main(["--params", str(workspace / "params.yaml"), "--model", "random_forest",
                                "--data", str(data), "--out", str(tmp_path / "models" / "random_forest"),
                                "--timing", str(tmp_path / "rf_train_timing.json")])
    assert code == 1
    assert "train.tsv:2" in capsys.readouterr().err
    assert list((tmp_path / "models").iterdir()) == []  # not even a temporary dir is left


def test_missing_or_damaged_model_file_is_a_clear_error(workspace, tmp_path, capsys):
    model_dir = tmp_path / "models" / "fasttext_char"
    assert train(workspace, "fasttext_char", model_dir) == 0
    model_file = model_dir / fasttext_model.MODEL_FILE
    good = model_file.read_bytes()

    model_file.unlink()
    assert evaluate(workspace, "fasttext_char", model_dir, tmp_path / "metrics") == 1
    assert "model.bin: fastText model file missing" in capsys.readouterr().err

    model_file.write_bytes(good[: len(good) // 2])  # fastText itself would end the process silently
    assert evaluate(workspace, "fasttext_char", model_dir, tmp_path / "metrics") == 1
    assert "model.bin: expected the model file train_baseline wrote" in capsys.readouterr().err
    assert not (tmp_path / "metrics").exists()

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a model")
    with pytest.raises(BadInputError, match="expected a fastText model file"):
        fasttext_model.load(garbage)


def test_damaged_forest_is_never_unpickled(workspace, tmp_path):
    model_dir = tmp_path / "random_forest"
    assert train(workspace, "random_forest", model_dir) == 0
    sha256 = read_json(model_dir / "model.json")["sha256"]
    (model_dir / random_forest.FOREST_FILE).write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(BadInputError, match="forest.pkl: expected the file train_baseline wrote"):
        random_forest.load(model_dir, sha256)


@pytest.mark.parametrize("stage", [train_baseline, evaluate_baseline])
def test_every_flag_has_help(stage):
    for action in stage.build_parser()._actions:
        assert action.help, action.option_strings
