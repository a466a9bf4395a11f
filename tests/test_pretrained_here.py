"""`pretrained: here`: NER and LCQMC fine-tune from the pretrain stage's checkpoint of their backbone,
and the DAG builds that checkpoint first; pre-training off leaves no "pretrained here" runs."""
from __future__ import annotations

import subprocess
import sys

import yaml

from helpers import ROOT
from zhbench import layout
from zhbench import params as P


def default_params() -> dict:
    return P.load(ROOT / "params.yaml")


def test_here_names_the_tasks_pretrained_checkpoint_while_the_family_is_pretrained():
    params = default_params()
    params["data"]["name"] = "mytitles"
    params["data"]["path"] = "my-titles.csv"
    assert layout.pretrained_source("here", "bert", params) == "models/mytitles/pretrained/bert"
    assert layout.pretrained_source("hfl/chinese-macbert-base", "macbert", params) == "hfl/chinese-macbert-base"
    params["pretrain"]["families"] = ["bert"]
    assert layout.pretrained_source("here", "albert", params) is None  # pre-training off for albert: from scratch


def test_the_report_names_what_a_model_started_from(tmp_path):
    from zhbench.encoders import PRETRAIN_EXPORT, starting_point

    (tmp_path / PRETRAIN_EXPORT).write_text("{}", encoding="utf-8")
    assert starting_point(str(tmp_path), "bert", "mini") == "bert-mini, pre-trained here"
    assert starting_point(None, "albert", "mini") == "albert-mini"
    assert starting_point("voidful/albert_chinese_base", "albert", "base") == "voidful/albert_chinese_base"


def test_pretraining_off_leaves_only_the_granularities():
    params = default_params()
    assert layout.backbone_runs(params)[layout.PRETRAINED_HERE] == params["pretrain"]["families"]
    params["pretrain"]["families"] = []
    assert layout.PRETRAINED_HERE not in layout.backbone_runs(params)


def test_the_dag_pretrains_before_fine_tuning_ner_and_lcqmc_from_here(tmp_path):
    for name in ("params.yaml", "config", "workflow"):
        src = ROOT / name
        subprocess.run(["cp", "-r", str(src), str(tmp_path / name)], check=True)
    params = default_params()
    params["ner"]["pretrained"] = "here"
    params["pair"]["pretrained"] = None
    params["pair"]["per_backbone"] = {"albert": {"pretrained": "here"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "metrics/ner/cluener.json",
                          "metrics/lcqmc/albert.json", "metrics/lcqmc/bert.json"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = [block.strip() for block in out.stdout.split("rule ")[1:]]
    inputs = {block.split(":", 1)[0] + "/" + next((l.split("wildcards:")[1].strip() for l in block.splitlines()
                                                  if "wildcards:" in l), ""):
              next((l.split("input:")[1] for l in block.splitlines() if "input:" in l), "") for block in jobs}
    assert sorted(k for k in inputs if k.startswith("pretrain/")) == ["pretrain/backbone=albert", "pretrain/backbone=bert"]
    assert "models/thucnews10/pretrained/bert" in inputs["train_ner/variant=cluener"]
    assert "models/thucnews10/pretrained/albert" in inputs["train_pair/backbone=albert"]
    assert "pretrained" not in inputs["train_pair/backbone=bert"]  # bert's LCQMC run starts from scratch
