"""The commands that rerun a result, in each engine's words: what the report prints under a table
("Regenerate: ...") and in place of one whose metrics are missing ("Not run yet: ... Run ...").

Snakemake is asked for the metrics files themselves; DVC for the stages of the rules that write
them, as globs, since the generated dvc.yaml names a rule's stages `<rule>` or `<rule>-<wildcards>`.
Both commands end with the report, so the one command brings the table up to date.
"""
from __future__ import annotations

from typing import NamedTuple

from zhbench import layout

SNAKEMAKE = ".venv/bin/snakemake"
DVC = ".venv/bin/dvc"
REPORT_TARGET = "reports/report.md"
REPORT_STAGE = "report"
# The whole pipeline: the Makefile's run target drives Snakemake; DVC reproduces every stage.
RUN_ALL_SNAKEMAKE = "make run"
RUN_ALL_DVC = f"{DVC} repro"


class Rerun(NamedTuple):
    """Snakemake targets and the rules whose DVC stages write them."""
    snakemake_targets: list[str]
    dvc_rules: list[str]

    def snakemake(self) -> str:
        return f"{SNAKEMAKE} {' '.join(self.snakemake_targets)} {REPORT_TARGET}"

    def dvc(self) -> str:
        return f"{DVC} repro --glob " + " ".join(f"'{r}*'" for r in self.dvc_rules) + f" {REPORT_STAGE}"


def targets(prefix: str, names: list[str], suffix: str) -> list[str]:
    """Snakemake targets as one shell brace expansion: prefix{a,b}suffix (plain for a single name)."""
    if len(names) == 1:
        return [f"{prefix}{names[0]}{suffix}"]
    return [f"{prefix}{{{','.join(names)}}}{suffix}"] if names else []


def dataset_stats(task: str) -> Rerun:
    return Rerun([f"{layout.metrics_dir(task)}/dataset_stats.json"], ["preprocess"])


def baselines(task: str, models: list[str]) -> Rerun:
    return Rerun(targets(f"{layout.metrics_dir(task)}/", models, ".json"), ["evaluate_baseline"])


def ensemble(task: str) -> Rerun:
    return Rerun([f"{layout.metrics_dir(task)}/ensemble.json"], ["ensemble"])


def backbones(task: str, runs: dict[str, list[str]]) -> Rerun:
    """Every backbone of every granularity ({granularity: [backbone]})."""
    return Rerun([t for g, names in runs.items()
                  for t in targets(f"{layout.metrics_dir(task)}/backbones/{g}/", names, ".json")],
                 ["evaluate_backbone"])


def backbone_timing(task: str, granularities: list[str]) -> Rerun:
    return Rerun([f"{layout.metrics_dir(task)}/backbones/char/bert_timing.json"],
                 [f"evaluate_backbone-{g}-" for g in granularities])


def pretraining(task: str, families: list[str]) -> Rerun:
    """The pretrain stage and the fine-tuning of its checkpoints."""
    return Rerun(targets(f"{layout.metrics_dir(task)}/pretrain/", families, ".json")
                 + targets(f"{layout.metrics_dir(task)}/backbones/{layout.PRETRAINED_HERE}/", families, ".json"),
                 ["pretrain", "evaluate_backbone"])


def quantization(task: str, backbones: list[str]) -> Rerun:
    return Rerun(targets(f"{layout.metrics_dir(task)}/quantize/char/", backbones, ".json"), ["quantize"])


def textcnn_students(task: str, teachers: list[str]) -> Rerun:
    return Rerun([f"{layout.metrics_dir(task)}/students/char/textcnn_{t}.json" for t in teachers],
                 ["distill_tsv", "train_student"])


def fastbert(task: str, backbone: str) -> Rerun:
    return Rerun([f"{layout.metrics_dir(task)}/fastbert/char/{backbone}.json"], ["fastbert"])


def latency(task: str) -> Rerun:
    return Rerun([f"{layout.metrics_dir(task)}/latency_timing.json"], ["latency"])


def training_timing() -> Rerun:
    """Every training stage's timing file: the whole pipeline."""
    return Rerun(["all"], ["train_backbone", "train_ner", "train_pair"])


def ner(variants: list[str]) -> Rerun:
    return Rerun(targets(f"{layout.metrics_dir('ner')}/", variants, ".json"), ["evaluate_ner"])


def lcqmc(backbones: list[str]) -> Rerun:
    return Rerun(targets(f"{layout.metrics_dir('lcqmc')}/", backbones, ".json"), ["evaluate_pair"])
