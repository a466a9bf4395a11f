"""Session-wide fixtures: the README's own pipeline runs (its `make run` in one fresh clone, its
`dvc repro` in another, both on the smoke profile, started side by side when the session starts so
they overlap the unit tests), shared by the end-to-end, README, kill-and-resume and SLURM tests;
and the rule that decides whether this machine can run the SLURM tests."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py, also for tests/slurm/

from helpers import (ReadmeRun, make_fresh_clone, make_own_data_project, make_pretrained_smoke_project,  # noqa: E402
                     readme_blocks)

RUN_TIMEOUT = 2400  # seconds a pipeline run may take (they share the machine with the unit tests)
PIPELINE_FIXTURES = {"smoke_local", "smoke_dvc", "pretrained_smoke", "own_data_run"}


def slurm_capable() -> str | None:
    """None when this machine can build a local SLURM cluster, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("apt-get") or not Path("/etc/debian_version").exists():
        return "not a Debian machine with apt-get"
    return None


def pytest_collection_modifyitems(config, items):
    config.zhbench_pipeline_runs = {f for item in items for f in PIPELINE_FIXTURES & set(item.fixturenames)}
    # The tests that wait for the pipeline runs go last, so the unit tests run while the pipelines do.
    items.sort(key=lambda item: bool(PIPELINE_FIXTURES & set(item.fixturenames)))
    reason = slurm_capable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"SLURM tests build a one-node cluster from Debian packages: {reason}")
    for item in items:
        if "slurm" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def readme_runs(request, tmp_path_factory):
    """The README's pipeline blocks, started in the background as soon as the session starts (when a
    selected test needs them); each fixture below waits for its own."""
    runs: dict[str, ReadmeRun] = {}
    needed = getattr(request.config, "zhbench_pipeline_runs", set())
    root = tmp_path_factory.mktemp("runs")
    if needed & {"smoke_local", "smoke_dvc"}:
        blocks = readme_blocks()
        for kind, name in (("snakemake-run", "snakemake"), ("dvc-run", "dvc")):
            project = make_fresh_clone(root / name)
            runs[name] = ReadmeRun(project, [b for b in blocks if b.kind == kind], name)
    if "own_data_run" in needed:
        project = make_own_data_project(root / "own-data")
        runs["own"] = ReadmeRun.command(project, ".venv/bin/snakemake --cores 2 all", "own-data")
    if "pretrained_smoke" in needed:
        project = make_pretrained_smoke_project(root / "pretrained-smoke")
        runs["pretrained"] = ReadmeRun.command(project, ".venv/bin/snakemake --cores 2 all", "pretrained-smoke")
    yield runs
    for r in runs.values():
        if r.proc.poll() is None:
            os.killpg(r.proc.pid, 9)


@pytest.fixture(scope="session")
def smoke_local(readme_runs) -> Path:
    """The smoke profile run from nothing by the README's `make run` (Snakemake, default profile)."""
    return readme_runs["snakemake"].wait(RUN_TIMEOUT)


@pytest.fixture(scope="session")
def smoke_dvc(readme_runs) -> Path:
    """The smoke profile run from nothing by the README's `dvc repro` block."""
    return readme_runs["dvc"].wait(RUN_TIMEOUT)


@pytest.fixture(scope="session")
def pretrained_smoke(readme_runs) -> Path:
    """The pretrained-smoke profile run from nothing by Snakemake: every backbone, NER and LCQMC
    fine-tuned from tiny hub-layout checkpoints of all ten families (tests/checkpoints.py)."""
    return readme_runs["pretrained"].wait(RUN_TIMEOUT)


@pytest.fixture(scope="session")
def own_data_run(readme_runs) -> Path:
    """The smoke DAG on a 3-class dataset of string labels in CSV (helpers.make_own_data_project)."""
    return readme_runs["own"].wait(RUN_TIMEOUT)
