"""Session-wide fixtures: the README's own pipeline runs (its `make run` in one fresh clone, its
`dvc repro` in another, both on the smoke profile), the pretrained-smoke and own-data runs, and the
one-node SLURM cluster's build, all started side by side when the session starts so that they
overlap the unit tests; and the rule that decides whether this machine can run the SLURM tests."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py, also for tests/slurm/

from helpers import (ReadmeRun, make_fresh_clone, make_own_data_project, make_pretrained_smoke_project,  # noqa: E402
                     readme_blocks)

RUN_TIMEOUT = 2400  # seconds a pipeline run may take (they share the machine with the unit tests)
# In the order they usually finish (own data has the smallest DAG; `dvc repro` runs one stage at a
# time), which is the order their tests run in.
PIPELINE_FIXTURES = ("own_data_run", "pretrained_smoke", "smoke_local", "smoke_dvc")
CLUSTER_SH = Path(__file__).parent / "slurm" / "cluster.sh"


def slurm_capable() -> str | None:
    """None when this machine can build a local SLURM cluster, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("apt-get") or not Path("/etc/debian_version").exists():
        return "not a Debian machine with apt-get"
    return None


def _run_order(item) -> int:
    """0 for a unit test, 1 for one that waits for the SLURM cluster only, then 2, 3, ... by the last
    pipeline run it waits for."""
    waits = [i for i, f in enumerate(PIPELINE_FIXTURES) if f in item.fixturenames]
    return 2 + max(waits) if waits else 1 if "slurm_cluster" in item.fixturenames else 0


def pytest_collection_modifyitems(config, items):
    config.zhbench_pipeline_runs = {f for item in items for f in PIPELINE_FIXTURES if f in item.fixturenames}
    # The unit tests first, while the pipelines and the SLURM cluster build run in the background;
    # then the tests that wait for the cluster; then those that wait for each pipeline run.
    items.sort(key=_run_order)
    reason = slurm_capable()
    config.zhbench_cluster_build = reason is None and any("slurm_cluster" in item.fixturenames for item in items)
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
    if getattr(request.config, "zhbench_cluster_build", False):
        # The environment of this session, not a new shell's: cluster.sh up and down read the same
        # ZHBENCH_SLURM_DIR.
        (root / "cluster").mkdir()
        runs["cluster"] = ReadmeRun.command(root / "cluster", f"bash {CLUSTER_SH} up", "cluster-up", dict(os.environ))
        # A CI job that times out sends SIGTERM, which would end Python without running finalizers and
        # leave five daemons behind. As KeyboardInterrupt, pytest still tears this fixture down.
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield runs
    finally:
        for r in runs.values():
            if r.proc.poll() is None:
                os.killpg(r.proc.pid, 9)
        if "cluster" in runs:
            if os.environ.get("ZHBENCH_SLURM_KEEP") != "1":
                down = subprocess.run(["bash", str(CLUSTER_SH), "down"], capture_output=True, text=True, timeout=300)
                sys.stderr.write(down.stderr)
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def slurm_cluster_build(readme_runs) -> str:
    """tests/slurm/cluster.sh up, started when the session starts (apt and daemon start-up overlap the
    unit tests): its log once it has exited 0; the tests that need it fail otherwise. Stopped when
    the session ends (readme_runs)."""
    cluster = readme_runs["cluster"]
    cluster.wait(900)
    return cluster.log.read_text(errors="replace")


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
