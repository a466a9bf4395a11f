"""LCQMC sentence pairs: reader errors name file:line, pair encoding, a toy training run through the stages."""
from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest
import yaml

from zhbench.data.lcqmc import Pair, read_pairs
from zhbench.io import BadInputError
from zhbench.pair import VocabPairEncoder, build_char_vocab

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_read_pairs_ok(tmp_path):
    pairs = read_pairs(write(tmp_path / "ok.txt", ["开初婚未育证明怎么弄？\t初婚未育情况证明怎么开？\t1", "谁知道\t爱情\t0"]))
    assert pairs == [Pair("开初婚未育证明怎么弄？", "初婚未育情况证明怎么开？", 1, 1), Pair("谁知道", "爱情", 0, 2)]


@pytest.mark.parametrize("bad, expected", [
    ("只有一句\t1", "expected 3 tab-separated fields"),
    ("a\tb\tc\t1", "expected 3 tab-separated fields"),
    ("a\tb\t2", "expected label 0 or 1, found '2'"),
    ("a\tb\t", "expected label 0 or 1, found ''"),
    ("a\t \t1", "expected a non-empty sentence2"),
    ("", "expected 3 tab-separated fields"),
])
def test_read_pairs_bad_line_names_file_and_line(tmp_path, bad, expected):
    path = write(tmp_path / "bad.txt", ["好\t好\t1", bad])
    with pytest.raises(BadInputError) as e:
        read_pairs(path)
    assert str(e.value).startswith(f"{path}:2: ") and expected in str(e.value)


def test_encode_pair_segments_and_truncation():
    encoder = VocabPairEncoder(build_char_vocab([Pair("abcdef", "xy", 1, 1)]))
    vocab = encoder.vocab
    ids, seg = encoder.encode_pair("abcdef", "xy", 8)  # 5 slots: longest first -> "abc" + "xy"
    assert len(ids) == 8 and seg == [0, 0, 0, 0, 0, 1, 1, 1]
    assert ids[0] == vocab["[CLS]"] and ids[4] == vocab["[SEP]"] and ids[-1] == vocab["[SEP]"]
    assert ids[1:4] == [vocab[c] for c in "abc"] and ids[5:7] == [vocab["x"], vocab["y"]]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy_pairs(n: int, seed: int) -> list[str]:
    """Label 1 when sentence 2 holds the marker 同, 0 when it holds 异: learnable in a few dozen steps."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        same = rng.random() < 0.5
        a = "".join(rng.choice("甲乙丙丁") for _ in range(4))
        b = list(rng.choice("甲乙丙丁") for _ in range(4))
        b.insert(rng.randint(0, 4), "同" if same else "异")
        lines.append(f"{a}\t{''.join(b)}\t{int(same)}")
    return lines


def test_pair_stages_train_and_metrics(tmp_path):
    train, test = write(tmp_path / "dev.txt", toy_pairs(256, 1)), write(tmp_path / "test.txt", toy_pairs(128, 2))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"seed": 3, "pair": {
        "variant": "lcqmc-devtest", "backbones": ["albert", "bert"], "overrides": TINY, "max_len": 16,
        "batch_size": 16, "epochs": 4, "lr": 3e-3, "warmup_ratio": 0.0}}), encoding="utf-8")
    model, metrics, timing = tmp_path / "models/lcqmc/bert", tmp_path / "m/bert.json", tmp_path / "m/bert_timing.json"
    assert load_script("train_pair").main(["--params", str(params), "--backbone", "bert", "--train", str(train),
                                           "--out", str(model), "--timing", str(tmp_path / "train_timing.json"),
                                           "--no-progress"]) == 0
    argv = ["--params", str(params), "--model", str(model), "--eval", str(test), "--metrics", str(metrics),
            "--train-timing", str(tmp_path / "train_timing.json"), "--timing", str(timing), "--no-progress"]
    assert load_script("evaluate_pair").main(argv) == 0
    m = json.loads(metrics.read_text())
    assert {"global_step", "eval_accuracy", "eval_loss", "train_loss", "samples", "eval_f1"} <= set(m)
    assert m["global_step"] == 4 * 16 and m["samples"] == 256 and m["eval_split"] == "test"
    assert m["eval_accuracy"] > 0.8, m
    summary = json.loads((model / "train.json").read_text())
    assert summary["history"][-1]["train_loss"] < summary["history"][0]["train_loss"]
    t = json.loads(timing.read_text())
    assert {"train_step_time", "train_epoch_time", "valid_step_time", "valid_epoch_time", "device"} <= set(t)
    # a backbone not listed in params is refused with a one-line error
    assert load_script("train_pair").main(["--params", str(params), "--backbone", "xlnet", "--train", str(train),
                                           "--out", str(tmp_path / "x"), "--timing", str(tmp_path / "t.json"),
                                           "--no-progress"]) == 1
