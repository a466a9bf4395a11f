"""The pretrained-smoke profile: the whole DAG with every backbone fine-tuned from a checkpoint.

conftest.py builds tiny random-weight checkpoints of all ten families in hub layout (WordPiece
vocab.txt; spiece.model only for XLNet and T5), applies the profile and runs Snakemake once, with a
CSV dataset of the user's own for the classifiers (tests/test_own_data_pipeline.py checks that side). Here:
every stage ran, each fine-tuned model encodes exactly as its checkpoint's tokenizer, saved models
reload and predict the same, and what is served equals what the evaluation recorded.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import OWN_TASK as TASK
from zhbench.data.thucnews import read_examples, read_labels
from zhbench.encoders import CheckpointEncoder, load_encoder
from zhbench.io import read_json
from zhbench.predict import load_predictor
from zhbench.predictors import TextClassifier

pytestmark = pytest.mark.slow

FAMILIES = ["bert", "albert", "t5", "xlnet", "electra", "roberta", "macbert", "ernie", "mengzi", "nezha"]
TITLES = ["中国女排夺得世界杯冠军", "央行下调存款准备金率 0.5 个百分点", "iPhone 15 Pro 发布会", "《流浪地球》票房破纪录"]


@pytest.fixture(scope="module")
def project(pretrained_smoke) -> Path:
    return pretrained_smoke


def test_every_stage_ran_from_the_checkpoints(project):
    m = project / "metrics"
    expected = [m / TASK / f"backbones/char/{f}.json" for f in FAMILIES] + [
        m / TASK / "backbones/word/bert.json", m / TASK / "quantize/char/bert.json",
        m / TASK / "distill/char_tsv_ensemble.json", m / TASK / "students/char/textcnn_ensemble.json",
        m / TASK / "fastbert/char/bert.json", m / TASK / "cache/bert.json",
        m / "ner/cluener.json", m / "lcqmc/albert.json", m / "lcqmc/bert.json"]
    assert [p for p in expected if not p.is_file()] == []
    report = (project / "reports" / "report.md").read_text(encoding="utf-8")
    assert "profile `pretrained-smoke`" in report
    assert "checkpoints/tiny/bert+CRF" in json.dumps(read_json(m / "ner/cluener.json"))


@pytest.mark.parametrize("family", FAMILIES)
def test_the_fine_tuned_model_encodes_as_its_checkpoints_tokenizer(project, family):
    model_dir = project / "models" / TASK / "backbones/char" / family
    meta = read_json(model_dir / "zhbench.json")
    saved = load_encoder(model_dir, meta["extra"])
    original = CheckpointEncoder.load(family, project / "checkpoints/tiny" / family, "char")
    assert meta["extra"]["encoder"] == {"kind": "checkpoint", "family": family, "granularity": "char"}
    assert saved.fingerprint == original.fingerprint
    a, b = saved.encode(TITLES, 32), original.encode(TITLES, 32)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    if family == "xlnet":  # its tokenizer pads on the left and ends every row in <sep> <cls>
        assert saved.padding_side == "left" and (a["attention_mask"][:, -1] == 1).all()


def _test_titles(project: Path) -> tuple[list[str], list[int], list[str]]:
    data = project / "data/processed" / TASK
    labels = read_labels(data / "labels.txt")
    rows = read_examples(data / "text" / "test.tsv", len(labels)).examples
    return [r.text for r in rows], [r.label for r in rows], labels


@pytest.mark.parametrize("model", ["backbones/char/xlnet", "backbones/char/bert", "backbones/word/bert",
                                   "quantized/char/bert_int8", "quantized/char/bert_onnx"])
def test_served_answers_equal_the_evaluation_and_a_reload(project, model):
    texts, gold, labels = _test_titles(project)
    if model.startswith("quantized"):
        quantized = read_json(project / "metrics" / TASK / "quantize/char/bert.json")["trained"]
        texts, gold = texts[:quantized["test_rows"]], gold[:quantized["test_rows"]]  # quantize.max_test_rows
    model_dir = project / "models" / TASK / model
    first, second = (TextClassifier(load_predictor(model_dir, labels)[0]) for _ in range(2))
    probs = first.predict_proba(texts)
    assert np.array_equal(probs, second.predict_proba(texts)), "a reloaded model answers differently"
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    np.add.at(matrix, (gold, probs.argmax(1)), 1)
    if model.startswith("quantized"):
        key = "torch_int8" if model.endswith("int8") else "ort_int8"
        assert np.trace(matrix) / len(texts) == pytest.approx(quantized["test_accuracy"][key], abs=1e-6)
    else:
        record = read_json(project / "metrics" / TASK / f"{model}.json")["test"]
        assert matrix.tolist() == record["confusion_matrix"]


def test_the_profile_encodes_the_write_ups_setups():
    """The paper profile plans every stage with its write-up's settings (checked as data here; the
    run needs the real checkpoints and a GPU)."""
    from helpers import ROOT
    from zhbench import params as P

    paper = P.deep_merge(P.load(ROOT / "params.yaml"), P.profile_overlay("paper", ROOT / "config"))
    bb = paper["backbones"]
    assert (bb["train"]["batch_size"], bb["train"]["lr"], bb["train"]["epochs"], bb["train"]["eval_every"]) == (128, 5e-5, 5, 200)
    assert P.backbone_option(bb, "bert", "word", "pretrained") == "junnyu/wobert_chinese_plus_base"
    word_train = bb["bert"]["word"]["train"]
    assert (word_train["batch_size"], word_train["lr"], word_train["eval_every"]) == (64, 2e-5, 1000)
    assert word_train["patience_steps"] == 5 * 1000 and bb["bert"]["word"]["dropout"] == 0.3
    assert (paper["cache_timing"]["max_len"], paper["cache_timing"]["batch_size"], paper["cache_timing"]["lr"]) == (128, 16, 5e-5)
    assert paper["pair"]["per_backbone"]["albert"]["lr"] == 2e-5 and paper["pair"]["lr"] == 5e-5
    assert yaml.safe_load(yaml.safe_dump(paper)) == paper


def test_the_paper_profile_plans_every_stage(tmp_path):
    from helpers import make_smoke_project, run

    project = make_smoke_project(tmp_path / "paper", profile="paper")
    out = run(["snakemake", "--dry-run", "--quiet", "rules", "all"], cwd=project).stdout
    planned = {line.split()[0] for line in out.splitlines() if line and line.split()[-1].isdigit()}
    assert {"train_backbone", "evaluate_backbone", "quantize", "distill_tsv", "train_student", "fastbert",
            "train_ner", "evaluate_ner", "train_pair", "evaluate_pair", "cache_timing", "report"} <= planned
