"""dvc.yaml, generated from the Snakemake workflow: one DAG, written once.

The Snakemake rules are the truth (wildcards, resources, what SLURM needs); DVC gets one stage per
Snakemake job, with the job's own command, its inputs as deps, the dotted params keys its rule
tracks, and its outputs as outs, metrics or plots. Which is which follows from where an output
lives, so a rule never says it twice:

- under metrics/: `*_confusion.csv` is a confusion-matrix plot, a `curves/` directory is a
  training-curve plot (x: step), `*_timing.json` and `provenance.json` are plain outputs, any
  other JSON is a quality metric (what `dvc metrics diff` compares);
- everything under metrics/ and reports/figures/, and reports/report.md, is a small committed
  result (`cache: false`); everything else (data, models, the self-contained HTML report, NER
  predictions) goes to the DVC cache.

Stage names are `<rule>` or `<rule>-<wildcard values>` (DVC reserves `@` for its own foreach
stages); `dvc repro --glob '<rule>-*'` runs all jobs of one rule.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

HEADER = """\
# GENERATED from the Snakemake workflow (workflow/Snakefile) by `zhbench dag export-dvc`
# (`make dvc.yaml`); do not edit: change the rules, then regenerate. tests/test_dvc_export.py
# checks that this file is current. See src/zhbench/workflow/dvc_export.py for how each output
# is declared (metrics, plots, cached or not).
"""
SKIP_RULES = {"all"}  # the default target has no command


def snakemake_jobs(project: str | os.PathLike = ".") -> list[Any]:
    """Every job of a forced run of `all`, as Snakemake's own Job objects, in a stable order."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

    project = Path(project).resolve()
    cwd = os.getcwd()
    os.chdir(project)  # Snakemake resolves the workdir and profiles from the working directory
    try:
        with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            wf = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=project / "workflow" / "Snakefile",
                              workdir=project)
            wf.dag(DAGSettings(targets={"all"}, forceall=True))
            workflow = wf._workflow  # the DAG itself has no public API in Snakemake 9
            workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
            workflow._build_dag()
            order = {rule.name: i for i, rule in enumerate(workflow.rules)}
            jobs = [j for j in workflow.dag.jobs if j.rule.name not in SKIP_RULES]
            return sorted(jobs, key=lambda j: (order[j.rule.name], str(j.output[0])))
    finally:
        os.chdir(cwd)


def stage_name(job) -> str:
    values = [str(v) for v in dict(job.wildcards_dict).values()]
    return "-".join([job.rule.name, *values])


def _committed(path: str) -> bool:
    return path.startswith(("metrics/", "reports/figures/")) or path == "reports/report.md"


def declare(path: str) -> tuple[str, Any]:
    """(section, entry) of one output: 'metrics' | 'plots' | 'outs', and its dvc.yaml entry."""
    name = path.rsplit("/", 1)[-1]
    if path.startswith("metrics/"):
        if name.endswith("_confusion.csv"):
            return "plots", {path: {"template": "confusion", "x": "actual", "y": "predicted", "cache": False}}
        if "/curves/" in path:
            return "plots", {path: {"x": "step", "cache": False}}
        if name.endswith(".json") and not name.endswith("_timing.json") and name != "provenance.json":
            return "metrics", {path: {"cache": False}}
    return "outs", ({path: {"cache": False}} if _committed(path) else path)


def stage(job) -> dict[str, Any]:
    entry: dict[str, Any] = {"cmd": " ".join(str(job.shellcmd).split())}
    entry["deps"] = list(dict.fromkeys(str(f) for f in job.input))
    tracked = job.rule.params.tracked(job.wildcards) if "tracked" in job.rule.params._names else {}
    if tracked:
        entry["params"] = list(tracked)
    for path in (str(f) for f in job.output):
        section, item = declare(path)
        entry.setdefault(section, []).append(item)
    return entry


def export(project: str | os.PathLike = ".") -> str:
    """The text of dvc.yaml for the project's current params.yaml."""
    stages = {stage_name(job): stage(job) for job in snakemake_jobs(project)}
    body = yaml.safe_dump({"stages": stages}, sort_keys=False, allow_unicode=True, width=110)
    return HEADER + body
