"""zhbench.evaluate: metrics checked against hand-computed numbers, stable and atomic outputs."""
from __future__ import annotations

import csv
import warnings

import pytest

import zhbench.evaluate as evaluate
from zhbench.io import BadInputError, read_json

LABELS = ["finance", "sports", "game"]
# Hand-checkable case (rows: actual, columns: predicted):
#            finance sports game
#   finance     2      1     0      support 3
#   sports      0      1     1      support 2
#   game        0      0     1      support 1
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]


def test_report_matches_hand_computed_numbers():
    report = evaluate.classification_report(Y_TRUE, Y_PRED, LABELS, loss=0.5)
    assert report["accuracy"] == pytest.approx(4 / 6)
    # finance P=2/2 R=2/3 F1=0.8; sports P=1/2 R=1/2 F1=0.5; game P=1/2 R=1/1 F1=2/3
    assert report["per_class"]["finance"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert report["per_class"]["sports"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert report["per_class"]["game"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert report["macro"] == pytest.approx({"precision": 2 / 3, "recall": 13 / 18, "f1": (0.8 + 0.5 + 2 / 3) / 3})
    # weighted by support 3:2:1
    assert report["weighted"] == pytest.approx(
        {"precision": (3 * 1.0 + 2 * 0.5 + 0.5) / 6, "recall": 4 / 6, "f1": (3 * 0.8 + 2 * 0.5 + 2 / 3) / 6}
    )
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["n_samples"] == 6
    assert report["labels"] == LABELS
    assert report["loss"] == 0.5


def test_report_scores_a_class_never_predicted_as_zero():
    report = evaluate.classification_report([0, 1, 2], [0, 1, 1], LABELS)
    assert report["per_class"]["game"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert "loss" not in report


def test_report_rejects_label_ids_outside_the_label_names():
    with pytest.raises(ValueError, match="outside"):
        evaluate.classification_report([0, 1], [0, 3], LABELS)


def write(tmp_path, run: str):
    reports = {split: evaluate.classification_report(Y_TRUE, Y_PRED, LABELS) for split in ("dev", "test")}
    paths = [tmp_path / run / name for name in ("m.json", "confusion.csv", "confusion.png")]
    evaluate.write_evaluation(*paths, reports, {"model": "demo", "variant": "tiny"})
    return paths


def test_write_evaluation_outputs_are_byte_identical_across_runs(tmp_path):
    first, second = write(tmp_path, "a"), write(tmp_path, "b")
    for one, two in zip(first, second):
        assert one.read_bytes() == two.read_bytes(), one.name
    metrics = read_json(first[0])
    assert metrics["model"] == "demo" and set(metrics) == {"model", "variant", "dev", "test"}
    assert first[2].read_bytes().startswith(b"\x89PNG")


def test_confusion_csv_has_one_row_per_test_sample_with_label_names(tmp_path):
    _, confusion_csv, _ = write(tmp_path, "a")
    with open(confusion_csv, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["actual"], r["predicted"]) for r in rows) == sorted(
        (LABELS[t], LABELS[p]) for t, p in zip(Y_TRUE, Y_PRED)
    )


def test_a_failing_evaluation_leaves_no_files(tmp_path, monkeypatch):
    def broken_figure(*_args):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(evaluate, "_write_confusion_png", broken_figure)
    with pytest.raises(RuntimeError, match="figure failed"):
        write(tmp_path, "a")
    assert list((tmp_path / "a").iterdir()) == []


def test_write_timing_keeps_times_apart(tmp_path):
    evaluate.write_timing(tmp_path / "t.json", {"train_seconds": 1.25})
    assert read_json(tmp_path / "t.json") == {"train_seconds": 1.25}


def test_read_split_names_file_and_line_of_a_bad_row(tmp_path):
    split = tmp_path / "train.tsv"
    split.write_text("股 票\t0\n足 球\t7\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"train.tsv:2: label must be an integer in 0..2, found .7."):
        evaluate.read_split(split, n_labels=3)


def test_heat_map_of_chinese_class_names_draws_no_empty_boxes(tmp_path):
    """matplotlib warns for every glyph its font lacks and draws a box: with no CJK font installed
    the heat map numbers the classes instead, and with one it draws the names in it."""
    from matplotlib.ft2font import FT2Font

    names = ["体育", "财经", "娱乐"]
    font = evaluate.font_with_glyphs(names)
    if font is not None:
        assert {ord(c) for name in names for c in name} <= FT2Font(font.get_file()).get_charmap().keys()
        assert "LastResort" not in font.get_file()
    assert evaluate.font_with_glyphs(LABELS).get_file().endswith("DejaVuSans.ttf")
    report = evaluate.classification_report([0, 1, 2, 1], [0, 1, 1, 1], names)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font")
        evaluate.write_evaluation(tmp_path / "m.json", tmp_path / "c.csv", tmp_path / "c.png",
                                  {"test": report}, {"model": "demo"})
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
