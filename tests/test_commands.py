"""The report's "Regenerate:" lines name real things: every DVC glob matches a stage of the committed
dvc.yaml (zhbench.workflow.commands)."""
from __future__ import annotations

import fnmatch

import pytest
import yaml

from helpers import ROOT
from zhbench import layout
from zhbench.workflow import commands as C

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
TASK = "thucnews10"
RERUNS = [
    C.dataset_stats(TASK), C.baselines(TASK, PARAMS["baselines"]["models"]), C.ensemble(TASK),
    C.backbones(TASK, layout.backbone_runs(PARAMS)), C.backbone_timing(TASK, ["char", "word"]),
    C.pretraining(TASK, PARAMS["pretrain"]["families"]), C.quantization(TASK, ["bert"]),
    C.textcnn_students(TASK, PARAMS["distill"]["teachers"]), C.fastbert(TASK, "bert"), C.latency(TASK),
    C.training_timing(), C.ner(["cluener"]), C.lcqmc(["bert"]),
]


@pytest.mark.parametrize("rerun", RERUNS, ids=lambda r: r.dvc_rules[0])
def test_every_dvc_glob_matches_a_stage(rerun):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for rule in rerun.dvc_rules:
        assert fnmatch.filter(stages, f"{rule}*"), f"{rule}* matches no stage of dvc.yaml"
    assert rerun.dvc().endswith(f" {C.REPORT_STAGE}") and C.REPORT_STAGE in stages
