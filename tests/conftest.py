"""Session-wide fixtures: one local smoke run of the whole DAG, shared by the end-to-end tests and the
SLURM comparison, and the rule that decides whether this machine can run the SLURM tests."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py, also for tests/slurm/

from helpers import make_smoke_project, run  # noqa: E402


def slurm_capable() -> str | None:
    """None when this machine can build a local SLURM cluster, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("apt-get") or not Path("/etc/debian_version").exists():
        return "not a Debian machine with apt-get"
    return None


def pytest_collection_modifyitems(config, items):
    reason = slurm_capable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"SLURM tests build a one-node cluster from Debian packages: {reason}")
    for item in items:
        if "slurm" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smoke_local(tmp_path_factory) -> Path:
    """The smoke profile run from nothing with Snakemake's local profile (the same DAG as `make run`)."""
    project = make_smoke_project(tmp_path_factory.mktemp("smoke") / "snakemake")
    run(["snakemake", "--cores", "2", "all"], cwd=project,
        timeout=2400)
    return project
