"""Session-wide fixtures: the session's pipeline runs, all in the background so that they overlap the
unit tests and each other, each started as soon as what it needs is there:

- the README's `make run` (Snakemake, smoke profile) in a fresh clone, from nothing;
- that run, `dvc commit`ted in a copy; the README's `dvc repro` in another fresh clone whose DVC
  cache is that copy's (so DVC restores every stage from its run cache instead of training the DAG a
  second time); and a second clean run, by DVC, of one stage of every kind that trains or predicts;
- the pretrained-smoke run: tiny checkpoints of all ten families, fine-tuned on a dataset of the
  user's own (a CSV of string labels);
- the one-node SLURM cluster's build, then a tiny workflow and a partial rerun of the smoke run on it;
- kill-and-resume, by Snakemake on a copy of the smoke run and by DVC on a copy of the committed one,
  and the uninterrupted reference; a changed param under DVC (tests/flows.py).

Also: the rule that decides whether this machine can run the SLURM tests."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py, also for tests/slurm/

from flows import Flow, change_a_param_under_dvc, kill_and_resume  # noqa: E402
from helpers import (DVC_RERUN_STAGES, RERUN_ON_SLURM, RESUME_COMMANDS, BackgroundRun, ReadmeRun,  # noqa: E402
                     copy_tree, copy_with_longer_training, env, make_fresh_clone, make_pretrained_smoke_project,
                     readme_blocks)

RUN_TIMEOUT = 2400  # seconds a pipeline run may take (they share the machine with the unit tests)
SLURM_RUN_TIMEOUT = int(os.environ.get("ZHBENCH_SLURM_TIMEOUT", "1200"))
CLUSTER_SH = Path(__file__).parent / "slurm" / "cluster.sh"
SLURM_PROFILE = Path(__file__).resolve().parents[1] / "workflow" / "profiles" / "slurm"

# The runs whose tests come last start at a lower priority than the README's `dvc repro`, which
# starts with them and which most of the remaining tests wait for.
NICE_LATER = 5
LATER = f"nice -n {NICE_LATER}"
# The runs each run starts from (it starts once they have finished, and fails if one of them did).
NEEDS = {"smoke_committed": ["smoke_local"], "smoke_dvc": ["smoke_committed"], "dvc_rerun": ["smoke_committed"],
         "resume_uninterrupted": ["smoke_local"], "resumed_snakemake": ["smoke_local"],
         "resumed_dvc": ["smoke_committed"], "dvc_param_change": ["smoke_committed"],
         "slurm_tiny_run": ["slurm_cluster_build"], "slurm_pipeline_run": ["slurm_cluster_build", "smoke_local"]}
# In the order they usually finish, which is the order their tests run in (a test runs after the
# last of the runs it waits for; the unit tests run first).
RUN_FIXTURES = ("slurm_tiny_run", "smoke_local", "pretrained_smoke", "smoke_committed", "smoke_dvc",
                "resume_uninterrupted", "resumed_snakemake", "dvc_param_change", "resumed_dvc", "slurm_pipeline_run",
                "dvc_rerun")


def slurm_capable() -> str | None:
    """None when this machine can build a local SLURM cluster, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("apt-get") or not Path("/etc/debian_version").exists():
        return "not a Debian machine with apt-get"
    return None


def _run_order(item) -> int:
    waits = [i for i, f in enumerate(RUN_FIXTURES) if f in item.fixturenames]
    return 1 + max(waits) if waits else 0


def _with_needs(names: set[str]) -> set[str]:
    out = set(names)
    while grown := {n for name in out for n in NEEDS.get(name, [])} - out:
        out |= grown
    return out


# Last, after -m and -k have deselected what they do: only the runs the selected tests need start.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    reason = slurm_capable()
    if reason is not None:
        skip = pytest.mark.skip(reason=f"SLURM tests build a one-node cluster from Debian packages: {reason}")
        for item in items:
            if "slurm" in item.keywords:
                item.add_marker(skip)
    runnable = [item for item in items if not item.get_closest_marker("skip")]
    config.zhbench_runs = _with_needs({f for item in runnable for f in RUN_FIXTURES if f in item.fixturenames})
    items.sort(key=_run_order)


@pytest.fixture(scope="session", autouse=True)
def readme_runs(request, tmp_path_factory):
    """Every run a selected test needs, started in the background when the session starts; the
    fixtures below wait for their own."""
    needed = getattr(request.config, "zhbench_runs", set())
    root = tmp_path_factory.mktemp("runs")
    runs: dict[str, BackgroundRun] = {}

    def background(name: str, start, then=None, timeout: float = RUN_TIMEOUT) -> None:
        if name in needed:
            runs[name] = BackgroundRun(name, start, timeout, [runs[a] for a in NEEDS.get(name, [])], then)

    blocks = readme_blocks()

    def snapshots(project: Path) -> None:
        """Copies of the finished Snakemake run for the runs that start from it, taken before any test
        sees it (tests edit params.yaml or a module in it for a moment)."""
        if "smoke_committed" in needed:
            copy_tree(project, root / "snakemake-committed")
        if "slurm_pipeline_run" in needed:
            copy_tree(project, root / "slurm")
            for rel in RERUN_ON_SLURM:
                path = root / "slurm" / rel
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        if "resume_uninterrupted" in needed:
            copy_with_longer_training(project, root / "resume-uninterrupted")
        if "resumed_snakemake" in needed:
            copy_with_longer_training(project, root / "resume-killed-snakemake")

    background("smoke_local", lambda: ReadmeRun(make_fresh_clone(root / "snakemake"),
                                                [b for b in blocks if b.kind == "snakemake-run"], "snakemake"),
               then=snapshots)
    # `dvc commit` records the Snakemake run's outputs in dvc.lock and its cache, run cache included.
    background("smoke_committed", lambda: ReadmeRun.command(root / "snakemake-committed",
                                                            ".venv/bin/dvc commit --force --quiet", "dvc-commit", env()))
    background("smoke_dvc", lambda: _dvc_readme_run(root / "dvc", root / "snakemake-committed", blocks))
    background("dvc_rerun", lambda: _dvc_rerun(root / "snakemake-committed", root / "dvc-rerun"))
    background("resume_uninterrupted", lambda: ReadmeRun.command(root / "resume-uninterrupted",
                                                                 f"{LATER} {RESUME_COMMANDS['snakemake']}",
                                                                 "resume-uninterrupted"))
    background("resumed_snakemake", lambda: Flow(root / "resume-killed-snakemake", kill_and_resume("snakemake"),
                                                 NICE_LATER))
    background("resumed_dvc", lambda: Flow(copy_with_longer_training(root / "snakemake-committed",
                                                                     root / "resume-killed-dvc"),
                                           kill_and_resume("dvc"), NICE_LATER))
    background("dvc_param_change", lambda: Flow(copy_tree(root / "snakemake-committed", root / "dvc-param-change"),
                                                change_a_param_under_dvc, NICE_LATER))
    background("pretrained_smoke", lambda: ReadmeRun.command(make_pretrained_smoke_project(root / "pretrained-smoke"),
                                                             ".venv/bin/snakemake --cores 2 all", "pretrained-smoke"))
    if "slurm_cluster_build" in needed:
        # A CI job that times out sends SIGTERM, which would end Python without running finalizers and
        # leave five daemons behind. As KeyboardInterrupt, pytest still tears this fixture down.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        (root / "cluster").mkdir()
    # The environment of this session, not a new shell's: cluster.sh up and down read the same
    # ZHBENCH_SLURM_DIR.
    background("slurm_cluster_build", lambda: ReadmeRun.command(root / "cluster", f"bash {CLUSTER_SH} up", "cluster-up",
                                                                dict(os.environ)), timeout=900)
    background("slurm_tiny_run", lambda: _slurm_tiny_run(root / "slurm-tiny"))
    background("slurm_pipeline_run", lambda: _slurm_run(root / "slurm", "workflow/profiles/slurm", "slurm-pipeline"))
    try:
        yield runs
    finally:
        for r in runs.values():
            r.stop()
        if "slurm_cluster_build" in runs:
            if os.environ.get("ZHBENCH_SLURM_KEEP") != "1":
                down = subprocess.run(["bash", str(CLUSTER_SH), "down"], capture_output=True, text=True, timeout=300)
                sys.stderr.write(down.stderr)
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _dvc_readme_run(project: Path, committed: Path, blocks) -> ReadmeRun:
    """The README's `dvc repro` blocks in a fresh clone that holds the committed Snakemake run's DVC
    cache, as if pulled from a remote with `dvc pull --run-cache`."""
    make_fresh_clone(project)
    shutil.copytree(committed / ".dvc" / "cache", project / ".dvc" / "cache")
    return ReadmeRun(project, [b for b in blocks if b.kind == "dvc-run"], "dvc")


def _dvc_rerun(committed: Path, project: Path) -> ReadmeRun:
    copy_tree(committed, project)
    return ReadmeRun.command(project, f"{LATER} .venv/bin/dvc repro --force --single-item {' '.join(DVC_RERUN_STAGES)}",
                             "dvc-rerun")


def _slurm_tiny_run(project: Path) -> ReadmeRun:
    """tests/slurm/tiny/Snakefile, with a mirror setting to see in the jobs."""
    project.mkdir()
    shutil.copy(Path(__file__).parent / "slurm" / "tiny" / "Snakefile", project / "Snakefile")
    return _slurm_run(project, str(SLURM_PROFILE), "slurm-tiny", ZHBENCH_MIRROR="/mirror/passed/through")


def _slurm_run(project: Path, profile: str, name: str, **env_extra: str) -> ReadmeRun:
    """Snakemake on the SLURM profile; `timeout -k 10`: a Snakemake that lost track of its SLURM jobs
    ignores SIGTERM and waits forever, so after the timeout it gets SIGKILL ten seconds later."""
    command = (f"timeout -k 10 {SLURM_RUN_TIMEOUT} {sys.executable} -m snakemake --workflow-profile {profile} all"
               # on failure, the last SLURM job logs go into the run's log too
               " || { rc=$?; for f in $(ls -t $(find .snakemake/slurm_logs -name '*.log') | head -5); do"
               " echo \"--- $f\"; tail -c 1500 \"$f\"; done; exit $rc; }")
    return ReadmeRun.command(project, command, name, env(**env_extra))


@pytest.fixture(scope="session")
def smoke_local(readme_runs) -> Path:
    """The smoke profile run from nothing by the README's `make run` (Snakemake, default profile)."""
    return readme_runs["smoke_local"].wait()


@pytest.fixture(scope="session")
def smoke_committed(readme_runs) -> Path:
    """A copy of smoke_local after `dvc commit --force`."""
    return readme_runs["smoke_committed"].wait()


@pytest.fixture(scope="session")
def smoke_dvc(readme_runs) -> Path:
    """The README's `dvc repro` block, run over smoke_committed's DVC cache."""
    return readme_runs["smoke_dvc"].wait()


@pytest.fixture(scope="session")
def dvc_rerun(readme_runs) -> Path:
    """A copy of smoke_committed after `dvc repro --force --single-item` of DVC_RERUN_STAGES."""
    return readme_runs["dvc_rerun"].wait()


@pytest.fixture(scope="session")
def resume_uninterrupted(readme_runs) -> Path:
    """A copy of smoke_local with char/bert trained longer, uninterrupted (tests/test_resume.py)."""
    return readme_runs["resume_uninterrupted"].wait()


@pytest.fixture(scope="session")
def resumed_snakemake(readme_runs):
    """flows.Resumed: Snakemake killed mid-training and run again, on a copy of smoke_local with
    char/bert trained longer."""
    return readme_runs["resumed_snakemake"].wait()


@pytest.fixture(scope="session")
def resumed_dvc(readme_runs):
    """flows.Resumed: `dvc repro` killed mid-training and run again, on a copy of smoke_committed
    with char/bert trained longer."""
    return readme_runs["resumed_dvc"].wait()


@pytest.fixture(scope="session")
def dvc_param_change(readme_runs):
    """flows.ParamChange: `dvc repro` and `dvc metrics diff` on a copy of smoke_committed, before and
    after a changed param."""
    return readme_runs["dvc_param_change"].wait()


@pytest.fixture(scope="session")
def pretrained_smoke(readme_runs) -> Path:
    """The pretrained-smoke profile run from nothing by Snakemake: every backbone, NER and LCQMC
    fine-tuned from tiny hub-layout checkpoints of all ten families (tests/checkpoints.py), the
    classifiers on own data (helpers.make_pretrained_smoke_project)."""
    return readme_runs["pretrained_smoke"].wait()


@pytest.fixture(scope="session")
def slurm_tiny_run(readme_runs) -> Path:
    """tests/slurm/tiny/Snakefile through the SLURM profile."""
    return readme_runs["slurm_tiny_run"].wait()


@pytest.fixture(scope="session")
def slurm_pipeline_run(readme_runs) -> Path:
    """A copy of smoke_local without RERUN_ON_SLURM's outputs, completed through the SLURM profile."""
    return readme_runs["slurm_pipeline_run"].wait()
