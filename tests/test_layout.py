"""Where every model lives: the names the CLI, the rules and the report share (zhbench.layout)."""
from __future__ import annotations

import yaml

from helpers import ROOT
from zhbench import layout


def _params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def test_model_paths_put_backbones_under_backbones():
    assert layout.model_path("t", "fasttext_char") == "models/t/fasttext_char"
    assert layout.model_path("t", "char/bert") == "models/t/backbones/char/bert"
    assert layout.model_path("t", "pretrained-char/albert") == "models/t/backbones/pretrained-char/albert"
    assert layout.model_path("t", "quantized/char/bert_int8") == "models/t/quantized/char/bert_int8"


def test_a_bare_backbone_teacher_is_the_char_one_and_baselines_keep_their_name():
    params = _params()
    baseline = params["baselines"]["models"][0]
    assert layout.teacher_path("t", "bert", params) == "models/t/backbones/char/bert"
    assert layout.teacher_path("t", "word/nezha", params) == "models/t/backbones/word/nezha"
    assert layout.teacher_path("t", baseline, params) == f"models/t/{baseline}"
    assert layout.teacher_path("t", "ensemble", params) == "models/t/ensemble"


def test_every_served_model_has_a_distinct_path_and_the_forest_is_not_served():
    params = _params()
    served = layout.served_models(params)
    paths = [layout.model_path("t", m) for m in served]
    assert len(set(paths)) == len(paths) and "ensemble" in served
    # an ensemble finds its members where the layout puts them, whatever their kind
    from pathlib import Path

    from zhbench.ensemble import member_dir

    assert all(str(member_dir(Path("models/t"), m)) == layout.model_path("t", m) for m in served)
    assert not any(params["baselines"].get(m, {}).get("type") == "random_forest" for m in served)


def test_models_no_stage_trains_are_named_before_the_run():
    params = _params()
    assert layout.unknown_model_references(params) == []
    params["backbones"]["granularities"] = {"char": ["bert"], "word": ["bert"]}
    params["baselines"]["models"] = ["fasttext_char", "linear_ngram"]
    params["distill"]["teachers"] = ["bert", "word/nezha", "linear_ngram", "ensemble"]
    assert layout.unknown_model_references(params) == [
        "ensemble.members: fasttext_word", "ensemble.members: char/xlnet", "distill.teachers: word/nezha"]
    params["pretrain"]["families"] = []
    params["ensemble"]["members"] = ["pretrained-char/bert"]
    assert layout.unknown_model_references(params) == [
        "ensemble.members: pretrained-char/bert", "distill.teachers: word/nezha"]
