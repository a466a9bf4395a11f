"""End-to-end smoke runs of the whole DAG through Snakemake and through DVC.

Snakemake runs the smoke profile in a fresh clone, from nothing, by the README's `make run`; DVC runs
the README's `dvc repro` in another fresh clone over that run's committed cache, and reruns one stage
of each kind from its inputs in a copy (conftest.py: once per session, in the background); each test
then checks one promise of the stage contract.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from flows import dvc_ran_stages
from helpers import DVC_RERUN_STAGES, edit_params, quality_metrics, run
from zhbench import layout

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smk(smoke_local) -> Path:
    return smoke_local


@pytest.fixture(scope="module")
def dvc(smoke_dvc) -> Path:
    return smoke_dvc


def snakemake_planned_jobs(project: Path) -> list[str]:
    out = run(["snakemake", "--dry-run", "--quiet", "rules", "all"], cwd=project).stdout
    return sorted(re.findall(r"^(\w+(?:@\S+)?)\s+\d+$", out, re.M))


def snakemake_planned_outputs(project: Path) -> set[str]:
    out = run(["snakemake", "--dry-run", "all"], cwd=project).stdout
    return {o for line in re.findall(r"^    output: (.*)$", out, re.M) for o in line.split(", ")}


def report_figures(project: Path) -> list[str]:
    """The figures the report stage draws itself (it reruns with the report)."""
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    curves = [f"reports/figures/curves_{g}_{b}.png" for g, names in layout.backbone_runs(params).items()
              for b in names]
    return curves + ["reports/figures/accuracy_vs_latency.png"] + [
        f"reports/figures/fastbert_speed_{b}.png" for b in params["fastbert"]["backbones"]]


def test_snakemake_run_ends_with_the_report(smk):
    report = (smk / "reports" / "report.md").read_text(encoding="utf-8")
    metrics = json.loads((smk / "metrics/thucnews10/fasttext_char.json").read_text(encoding="utf-8"))
    assert "## Baselines" in report
    assert f"{100 * metrics['test']['accuracy']:.2f}" in report
    assert "profile `smoke`" in report


def test_dvc_restores_every_stage_of_the_snakemake_run_from_its_run_cache(smk, dvc):
    """Over the DVC cache of the committed Snakemake run, the README's `dvc repro` runs nothing: for
    every stage, DVC finds the command, dependency hashes and parameters Snakemake's run recorded."""
    log = (dvc.parent / "dvc.log").read_text(encoding="utf-8")
    stages = set(yaml.safe_load((dvc / "dvc.yaml").read_text(encoding="utf-8"))["stages"])
    assert dvc_ran_stages(log) == set()
    assert set(re.findall(r"Stage '([^']+)' is cached - skipping run", log)) == stages
    assert quality_metrics(dvc) == quality_metrics(smk)


def test_a_second_clean_run_of_every_kind_of_stage_gives_byte_identical_quality_metrics(smk, dvc_rerun):
    """Two clean runs on one machine agree byte for byte: DVC reruns one stage of each kind that
    trains or predicts (helpers.DVC_RERUN_STAGES) from its inputs, its outputs removed first."""
    assert dvc_ran_stages((dvc_rerun.parent / "dvc-rerun.log").read_text(encoding="utf-8")) == set(DVC_RERUN_STAGES)
    a, b = quality_metrics(smk), quality_metrics(dvc_rerun)
    assert a and set(a) == set(b)
    different = [name for name in a if a[name] != b[name]]
    assert not different, f"quality metrics differ between two clean runs: {different}"


def test_second_run_does_nothing_in_snakemake(smk):
    proc = run(["snakemake", "--cores", "2", "all"], cwd=smk)
    assert "Nothing to be done" in proc.stderr, proc.stderr[-3000:]


def test_second_run_does_nothing_in_dvc(dvc):
    assert dvc_ran_stages(run(["dvc", "repro"], cwd=dvc).stdout) == set()
    assert "up to date" in run(["dvc", "status"], cwd=dvc).stdout


def test_changing_one_models_param_reruns_only_that_model_snakemake(smk):
    original = edit_params(smk, {"baselines.fasttext_char.epoch": 7})
    try:
        planned = snakemake_planned_outputs(smk)
    finally:
        (smk / "params.yaml").write_bytes(original)
    assert planned == {"models/thucnews10/fasttext_char", "metrics/thucnews10/fasttext_char.json",
                       "metrics/thucnews10/fasttext_char_train_timing.json",
                       "metrics/thucnews10/fasttext_char_timing.json",
                       "metrics/thucnews10/fasttext_char_confusion.csv",
                       "reports/figures/confusion_fasttext_char.png", "reports/report.md", "reports/report.html",
                       "metrics/provenance.json", "metrics/thucnews10/latency_timing.json",  # it times the model
                       *report_figures(smk)}


def test_report_numbers_come_from_metrics_files(smk, tmp_path):
    metrics_dir = tmp_path / "metrics"
    for src in (smk / "metrics").rglob("*.json"):
        dst = metrics_dir / src.relative_to(smk / "metrics")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    edited = metrics_dir / "thucnews10/fasttext_char.json"
    m = json.loads(edited.read_text(encoding="utf-8"))
    m["test"]["accuracy"] = 0.123456
    edited.write_text(json.dumps(m), encoding="utf-8")
    out = tmp_path / "report.md"
    run([sys.executable, "workflow/scripts/report.py", "--params", "params.yaml", "--metrics", str(metrics_dir),
         "--references", "config/references.yaml", "--out", str(out)], cwd=smk)
    assert "| `fasttext_char` | char |" in out.read_text(encoding="utf-8")
    assert "12.35" in out.read_text(encoding="utf-8")


def test_dvc_metrics_diff_shows_nothing_then_exactly_what_changed(dvc_param_change):
    """The reference-run flow (flows.change_a_param_under_dvc, on a copy of the committed run): commit
    metrics + dvc.lock; an unchanged `dvc repro` runs nothing and diffs to nothing; a changed param
    reruns exactly that model's stages and the report (and the latency stage, which times it), and
    `dvc metrics diff` names exactly the metrics that moved.

    (A `dvc repro --dry` cannot stand in for this: whether it lists the downstream evaluate stage
    varies between DVC runs, because a dry run does not know whether the model output will change.)"""
    assert dvc_param_change.ran_unchanged == set() and dvc_param_change.diff_unchanged == {}
    assert dvc_param_change.ran_changed == {"train_baseline-fasttext_char", "evaluate_baseline-fasttext_char",
                                            "latency", "report"}
    diff = dvc_param_change.diff_changed
    assert diff and set(diff) == {"metrics/thucnews10/fasttext_char.json"}, sorted(diff)


def _directory_hashes(project: Path) -> dict[str, str]:
    """{path: md5} of every directory that dvc.lock records (outputs and dependencies)."""
    lock = yaml.safe_load((project / "dvc.lock").read_text(encoding="utf-8"))
    hashes = {}
    for stage in lock["stages"].values():
        for entry in stage.get("deps", []) + stage.get("outs", []):
            if str(entry.get("md5", "")).endswith(".dir"):
                hashes[entry["path"]] = entry["md5"]
    return hashes


def test_snakemake_outputs_commit_to_the_same_dvc_lock_as_a_dvc_run(smoke_committed, dvc_rerun):
    """Engine bookkeeping (Snakemake's .snakemake_timestamp in every directory output) stays out of
    DVC: after `dvc commit`, a Snakemake run is up to date for DVC, and its directory hashes are the
    ones DVC records when it reruns those stages itself on this machine."""
    assert "up to date" in run(["dvc", "status"], cwd=smoke_committed).stdout
    ours, theirs = _directory_hashes(smoke_committed), _directory_hashes(dvc_rerun)
    assert ours and set(ours) == set(theirs)
    assert {p: h for p, h in ours.items() if theirs[p] != h} == {}


@pytest.mark.parametrize("engine", ["snakemake", "dvc"])
def test_dvc_plots_show_renders_every_plot(smk, dvc, engine, tmp_path):
    project = smk if engine == "snakemake" else dvc
    proc = run(["dvc", "plots", "show", "--out", str(tmp_path / "plots")], cwd=project, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "failed to load" not in out, out[-3000:]
    assert (tmp_path / "plots" / "index.html").is_file()


# Stages whose scripts run models/textcnn.py: train_student imports it; distill_tsv, fastbert, the
# ensemble and the latency stage load models through zhbench.predict, whose loader registry names it.
TEXTCNN_IMPORTERS = {"distill_tsv", "train_student", "fastbert", "ensemble", "latency"}


def test_a_changed_module_reruns_exactly_the_stages_that_import_it(smk, dvc):
    for project in (smk, dvc):
        module = project / "src/zhbench/models/textcnn.py"
        original = module.read_bytes()
        module.write_bytes(original + b"\n# a change\n")
        try:
            if project == dvc:
                changed = json.loads(run(["dvc", "status", "--json"], cwd=dvc).stdout or "{}")
                assert {name.split("-")[0] for name in changed} == TEXTCNN_IMPORTERS, sorted(changed)
            else:
                planned = set(snakemake_planned_jobs(smk)) - {"all", "total"}
                assert planned == TEXTCNN_IMPORTERS | {"report"}, planned  # the report reads their metrics
        finally:
            module.write_bytes(original)
            os.utime(module, (1, 1))  # older than every output again, as before the change
