"""The Snakefile and dvc.yaml define the same stages: same commands, deps, params and outs."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, make_smoke_project, run

SNAKEMAKE_ONLY_RULES = {"all"}  # the target rule has no command


def snakemake_jobs(project: Path) -> dict[str, dict]:
    """Jobs of a forced dry run, keyed by their shell command's output paths."""
    out = run(["snakemake", "--forceall", "--dry-run", "--printshellcmds", "all"], cwd=project).stdout
    jobs = {}
    for block in re.split(r"\n(?=\[.*\d{4}\]\n(?:local)?rule )", out):
        m = re.search(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", block, re.M)
        if not m or m.group(1) in SNAKEMAKE_ONLY_RULES:
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", m.group(2), re.M))
        cmd = re.search(r"^Shell command: (.*)$", block, re.M)
        assert cmd, f"rule {m.group(1)} has no shell command"
        wildcards = dict(kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if kv)
        jobs[" ".join(shlex.split(cmd.group(1)))] = {
            "rule": m.group(1),
            "wildcards": wildcards,
            "deps": set(fields.get("input", "").split(", ")) - {""},
            "outs": set(fields.get("output", "").split(", ")) - {""},
        }
    return jobs


def snakemake_tracked_params(project: Path, jobs: dict[str, dict]) -> dict[str, set[str]]:
    """The dotted params keys each job's rule tracks (its `tracked` params), keyed like `jobs`."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        wf = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=project / "workflow" / "Snakefile",
                          workdir=project)
        return {cmd: set(wf._workflow.get_rule(job["rule"]).params.tracked(job["wildcards"]))
                for cmd, job in jobs.items()}


def dvc_stages(project: Path) -> dict[str, dict]:
    from dvc.repo import Repo

    stages = {}
    with Repo(str(project)) as repo:
        for stage in repo.index.stages:
            params, deps = set(), set()
            for dep in stage.deps:
                if hasattr(dep, "params"):  # ParamsDependency
                    params |= set(dep.params)
                else:
                    deps.add(dep.def_path)
            outs = {out.def_path for out in stage.outs}
            stages[" ".join(shlex.split(stage.cmd))] = {"name": stage.addressing, "deps": deps,
                                                        "outs": outs, "params": params}
    return stages


@pytest.fixture(scope="module", params=[None, "smoke"], ids=["default", "smoke"])
def project(request, tmp_path_factory) -> Path:
    """A clean copy: the working tree may hold a run in progress (incomplete outputs)."""
    return make_smoke_project(tmp_path_factory.mktemp("parity") / "project", profile=request.param)


@pytest.fixture(scope="module")
def both(project):
    return snakemake_jobs(project), dvc_stages(project)


def test_same_commands(both):
    smk, dvc = both
    assert set(smk) == set(dvc), (
        f"only in Snakefile: {sorted(set(smk) - set(dvc))}\nonly in dvc.yaml: {sorted(set(dvc) - set(smk))}")


def test_same_deps_and_outs(both):
    smk, dvc = both
    for cmd, job in smk.items():
        stage = dvc[cmd]
        assert job["deps"] == stage["deps"], f"{stage['name']}: deps differ"
        assert job["outs"] == stage["outs"], f"{stage['name']}: outs differ"


def test_same_params(both, project):
    smk, dvc = both
    for cmd, tracked in snakemake_tracked_params(project, smk).items():
        assert tracked == dvc[cmd]["params"], f"{dvc[cmd]['name']}: params differ"


def test_every_dvc_stage_has_its_params_in_params_yaml(both, project):
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    for stage in both[1].values():
        for key in stage["params"]:
            node = params
            for part in key.split("."):
                assert part in node, f"{stage['name']}: params key {key} not in params.yaml"
                node = node[part]
