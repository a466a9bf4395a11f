"""Your own data through the whole pipeline: a 3-class CSV of string labels (体育/财经/游戏), one
setting (`data.path`), the DAG end to end through Snakemake (conftest.py runs it once: the
pretrained-smoke run, whose backbones fine-tune checkpoints of all ten families on it); then
`zhbench predict` on a CSV agrees with /predict and with the evaluation's confusion matrix."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import OWN_LABELS, env
from helpers import OWN_TASK as TASK

pytestmark = pytest.mark.slow

LABELS = sorted(OWN_LABELS.values())  # no class.txt: label ids in sorted order (label_order: sorted)


@pytest.fixture(scope="module")
def project(pretrained_smoke) -> Path:
    return pretrained_smoke


def test_outputs_are_named_after_the_data_and_carry_its_labels(project):
    stats = json.loads((project / f"metrics/{TASK}/dataset_stats.json").read_text(encoding="utf-8"))
    assert stats["labels"] == LABELS and stats["task"] == TASK
    assert stats["dev_carve"]["stratified"] and stats["splits"]["dev"]["rows"] == 30  # 10 % of 300
    assert set(stats["files"]) == {"train", "test"} and all(len(f["sha256"]) == 64 for f in stats["files"].values())
    for model in ("fasttext_char.json", "linear_ngram.json", "backbones/char/bert.json", "backbones/word/bert.json"):
        m = json.loads((project / f"metrics/{TASK}" / model).read_text(encoding="utf-8"))
        assert m["test"]["labels"] == LABELS and len(m["test"]["confusion_matrix"]) == 3, model
    report = (project / "reports/report.md").read_text(encoding="utf-8")
    assert report.startswith(f"# zhbench report: {TASK}") and "THUCNews" not in report.split("## NER")[0]
    assert not (project / "metrics/thucnews10").exists()


def _test_split(project: Path) -> tuple[list[str], list[int]]:
    rows = (project / f"data/processed/{TASK}/text/test.tsv").read_text(encoding="utf-8").splitlines()
    return [r.split("\t")[0] for r in rows], [int(r.split("\t")[1]) for r in rows]


@pytest.mark.parametrize("model", ["linear_ngram", "char/bert"])
def test_predict_on_a_csv_agrees_with_the_service_and_the_evaluation(project, model, tmp_path):
    texts, gold = _test_split(project)
    src = tmp_path / "titles.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["headline", "id"])
        writer.writerows([t, i] for i, t in enumerate(texts))
    out = tmp_path / "predictions.csv"
    proc = subprocess.run([sys.executable, "-m", "zhbench.cli", "predict", "--model", model, "--input", str(src),
                           "--text-column", "headline", "--output", str(out), "--no-progress"],
                          cwd=project, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(texts) and [r["text"] for r in rows] == texts
    predicted = [LABELS.index(r["label"]) for r in rows]

    metrics_file = project / f"metrics/{TASK}" / (f"backbones/{model}.json" if "/" in model else f"{model}.json")
    matrix = np.zeros((3, 3), dtype=int)
    np.add.at(matrix, (gold, predicted), 1)
    assert matrix.tolist() == json.loads(metrics_file.read_text(encoding="utf-8"))["test"]["confusion_matrix"]

    from fastapi.testclient import TestClient

    from zhbench.serve import ServeConfig, create_app, load_service, resolve_model_dir

    service = load_service(ServeConfig(model_dir=str(resolve_model_dir(model, project / "models", TASK)),
                                       labels_file=str(project / f"data/processed/{TASK}/labels.txt"),
                                       max_texts=len(texts), max_chars=512))
    served = TestClient(create_app(service)).post("/predict", json={"texts": texts, "top_k": 1}).json()
    assert [p["label"] for p in served["predictions"]] == [r["label"] for r in rows]
