"""Session-wide fixtures: one local smoke run of the whole DAG, shared by the end-to-end tests and the
SLURM comparison; the DVC smoke run, started in the background as soon as tests that need it are
collected; and the rule that decides whether this machine can run the SLURM tests."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py, also for tests/slurm/

from helpers import env, make_smoke_project, run  # noqa: E402

DVC_SMOKE_TIMEOUT = 2400


class BackgroundRun:
    """A command started now and joined when a test needs its result. The DVC smoke run is one: DVC
    runs one stage at a time, so on two cores it overlaps the Snakemake and SLURM smoke runs for
    minutes less of CI wall time, with the same outputs (each run has its own project copy)."""

    def __init__(self, cmd: list[str], cwd: Path, timeout: float):
        self.cmd, self.cwd, self.deadline = cmd, cwd, time.monotonic() + timeout
        self.log = cwd.parent / "background.log"
        with self.log.open("w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def join(self) -> Path:
        try:
            rc = self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{' '.join(self.cmd)} in {self.cwd} timed out:\n{self.log.read_text()[-6000:]}")
        if rc != 0:
            raise AssertionError(f"{' '.join(self.cmd)} failed ({rc}) in {self.cwd}:\n{self.log.read_text()[-6000:]}")
        return self.cwd

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def slurm_capable() -> str | None:
    """None when this machine can build a local SLURM cluster, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("apt-get") or not Path("/etc/debian_version").exists():
        return "not a Debian machine with apt-get"
    return None


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: start the DVC run only when it is needed
def pytest_collection_modifyitems(config, items):
    reason = slurm_capable()
    if reason is not None:
        skip = pytest.mark.skip(reason=f"SLURM tests build a one-node cluster from Debian packages: {reason}")
        for item in items:
            if "slurm" in item.keywords:
                item.add_marker(skip)
    if any("dvc_smoke" in getattr(item, "fixturenames", ()) for item in items):
        scratch = Path(tempfile.mkdtemp(prefix="zhbench-dvc-smoke-"))
        config.stash[_DVC_RUN] = BackgroundRun(["dvc", "repro"], make_smoke_project(scratch / "dvc"),
                                               DVC_SMOKE_TIMEOUT)


_DVC_RUN = pytest.StashKey[BackgroundRun]()


def pytest_sessionfinish(session, exitstatus):
    background = session.config.stash.get(_DVC_RUN, None)
    if background is not None:
        background.kill()
        shutil.rmtree(background.cwd.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def dvc_smoke(request) -> Path:
    """The smoke profile run from nothing with `dvc repro` (started at collection, joined here)."""
    return request.config.stash[_DVC_RUN].join()


@pytest.fixture(scope="session")
def smoke_local(tmp_path_factory) -> Path:
    """The smoke profile run from nothing with Snakemake's local profile (the same DAG as `make run`)."""
    project = make_smoke_project(tmp_path_factory.mktemp("smoke") / "snakemake")
    run(["snakemake", "--workflow-profile", "workflow/profiles/local", "--cores", "2", "all"], cwd=project,
        timeout=2400)
    return project
