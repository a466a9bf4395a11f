"""preprocess: every bad row is a one-line error naming file and line; no partial output."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zhbench.data.thucnews import read_examples
from zhbench.io import BadInputError
from zhbench.preprocess import PreprocessConfig, preprocess
from zhbench.text import segment

from helpers import ROOT, env

LABELS = "finance\nrealty\nstocks\neducation\nscience\nsociety\npolitics\nsports\ngame\nentertainment"
GOOD = ["中华女子学院：本科层次仅1专业招男生\t3", "东5环海棠公社230-290平2居准现房98折优惠\t1",
        "卡佩罗：告诉你德国脚生猛的原因 不希望英德战踢点球\t7"]


def make_raw(tmp_path: Path, train: bytes | None = None) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "class.txt").write_text(LABELS, encoding="utf-8")
    for split in ("train", "dev", "test"):
        (raw / f"{split}.txt").write_bytes(("\n".join(GOOD) + "\n").encode())
    if train is not None:
        (raw / "train.txt").write_bytes(train)
    return raw


def test_char_tokens_keep_ascii_runs_whole():
    assert segment("东5环230-290平iPhone6s", "char") == ["东", "5", "环", "230-290", "平", "iPhone6s"]


def test_word_tokens_use_jieba():
    assert segment("中华女子学院招男生", "word")[:2] == ["中华", "女子"]


def test_writes_both_granularities_and_stats(tmp_path):
    stats = preprocess(make_raw(tmp_path), tmp_path / "out", PreprocessConfig())
    out = tmp_path / "out"
    assert (out / "char" / "train.tsv").read_text(encoding="utf-8").splitlines()[0] == \
        "中 华 女 子 学 院 ： 本 科 层 次 仅 1 专 业 招 男 生\t3"
    assert (out / "word" / "dev.ft.txt").read_text(encoding="utf-8").startswith("__label__3 中华 女子")
    assert stats["splits"]["train"]["rows"] == 3
    assert stats["overlap"]["train-test"] == 3
    assert stats["splits"]["test"]["class_counts"]["education"] == 1


def test_bom_and_crlf_are_tolerated(tmp_path):
    raw = make_raw(tmp_path, ("\ufeff" + "\r\n".join(GOOD) + "\r\n").encode())
    result = read_examples(raw / "train.txt", 10)
    assert [e.label for e in result.examples] == [3, 1, 7]
    assert result.examples[0].text.startswith("中华")


@pytest.mark.parametrize("row, message", [
    ("没有制表符的标题 3", "expected 'title<TAB>label' (2 fields), found 1"),
    ("标签越界\t12", "label must be an integer in 0..9, found '12'"),
    ("\t4", "empty title"),
    ("女排\x00夺冠\t4", "control character U+0000 at character 2"),
    ("女排\x1b[31m夺冠\t4", "control character U+001B"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    raw = make_raw(tmp_path, ("\n".join([GOOD[0], row, GOOD[1]]) + "\n").encode())
    with pytest.raises(BadInputError) as e:
        preprocess(raw, tmp_path / "out", PreprocessConfig())
    assert str(e.value).startswith(f"{raw / 'train.txt'}:2: ")
    assert message in str(e.value)
    assert not (tmp_path / "out").exists()


def test_gbk_file_is_a_clear_error(tmp_path):
    raw = make_raw(tmp_path, ("\n".join(GOOD) + "\n").encode("gbk"))
    with pytest.raises(BadInputError, match=r"train.txt:1: not valid UTF-8 .*iconv"):
        preprocess(raw, tmp_path / "out", PreprocessConfig())


def test_skip_mode_counts_bad_rows(tmp_path):
    raw = make_raw(tmp_path, ("\n".join([GOOD[0], "坏行\t12", "空\x00字节\t3", GOOD[1]]) + "\n").encode())
    stats = preprocess(raw, tmp_path / "out", PreprocessConfig(on_bad_row="skip"))
    assert stats["splits"]["train"]["rows"] == 2
    assert stats["splits"]["train"]["skipped_rows"] == 2
    assert "\x00" not in (tmp_path / "out" / "char" / "train.tsv").read_text(encoding="utf-8")


def test_stage_script_prints_one_line_error_and_exits_1(tmp_path):
    raw = make_raw(tmp_path, "标签越界\t12\n".encode())
    proc = subprocess.run(
        [sys.executable, str(ROOT / "workflow/scripts/preprocess.py"), "--params", str(ROOT / "params.yaml"),
         "--raw", str(raw), "--out", str(tmp_path / "out"), "--stats", str(tmp_path / "stats.json"),
         "--stopwords", str(ROOT / "config/stopwords.txt")],
        capture_output=True, text=True, env=env(), cwd=tmp_path)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {raw / 'train.txt'}:1: label must be an integer in 0..9, found '12'"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "stats.json").exists()


def test_stats_are_byte_identical_across_runs(tmp_path):
    raw = make_raw(tmp_path)
    a = preprocess(raw, tmp_path / "a", PreprocessConfig())
    b = preprocess(raw, tmp_path / "b", PreprocessConfig())
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    for f in ("char/train.tsv", "word/test.ft.txt"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_row_caps_sample_evenly_so_a_label_sorted_file_keeps_every_class(tmp_path):
    raw = make_raw(tmp_path)
    sorted_rows = [f"标题{label}号{i}\t{label}" for label in range(10) for i in range(10)]
    (raw / "test.txt").write_text("\n".join(sorted_rows) + "\n", encoding="utf-8")
    stats = preprocess(raw, tmp_path / "out", PreprocessConfig(max_rows={"train": None, "dev": None, "test": 20}))
    assert stats["splits"]["test"]["rows"] == 20
    assert set(stats["splits"]["test"]["class_counts"].values()) == {2}
