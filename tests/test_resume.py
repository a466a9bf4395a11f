"""A pipeline killed hard (SIGKILL to its process group, as the OOM killer, a closed SSH session or a
power cut would do) leaves no process and no half-written output behind, and the same command run
again completes with the quality metrics of an uninterrupted run. Once through Snakemake, once
through DVC, on copies of the session's smoke runs with the char/bert training made long enough to
be caught mid-way.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import RESUME_COMMANDS, copy_with_longer_training, new_shell_env, quality_metrics

pytestmark = pytest.mark.slow

TRAIN_LOG = Path("logs/train_backbone/char/bert.log")
CHECKPOINT = Path("models/thucnews10/backbones/char/bert")
CHECKPOINT_FILES = {"config.json", "model.safetensors", "head.safetensors", "zhbench.json", "tokenizer.json"}


def start(project: Path, engine: str) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", RESUME_COMMANDS[engine]], cwd=project, env=new_shell_env(project.parent),
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


def finish(project: Path, engine: str) -> None:
    proc = subprocess.run(["bash", "-c", RESUME_COMMANDS[engine]], cwd=project, env=new_shell_env(project.parent),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{RESUME_COMMANDS[engine]}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def processes_in(project: Path) -> list[str]:
    """Command lines of live processes that work in `project` (cwd inside it, or it in their argv)."""
    root = str(project.resolve())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd == root or cwd.startswith(root + "/") or root in argv):
            found.append(f"{proc.name}: {argv.strip()}")
    return found


def kill_mid_training(project: Path, engine: str) -> None:
    proc = start(project, engine)
    log = project / TRAIN_LOG
    deadline = time.monotonic() + 600
    while not (log.is_file() and "Iter: " in log.read_text(encoding="utf-8", errors="replace")):
        assert proc.poll() is None, f"{engine} ended ({proc.returncode}) before the training could be killed"
        assert time.monotonic() < deadline, "training never reached its first evaluation"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while processes_in(project) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in(project) == [], "processes outlived the killed pipeline"
    checkpoint = project / CHECKPOINT
    # Either the engine removed the old checkpoint before the job and none was written, or it is whole.
    assert not checkpoint.exists() or CHECKPOINT_FILES <= {p.name for p in checkpoint.iterdir()}


@pytest.fixture(scope="module")
def uninterrupted(resume_uninterrupted) -> dict[str, bytes]:
    """The same training, not killed (conftest.py runs it in the background)."""
    return quality_metrics(resume_uninterrupted)


@pytest.mark.parametrize("engine", ["snakemake", "dvc"])
def test_killed_run_leaves_nothing_behind_and_the_same_command_resumes(engine, smoke_local, smoke_dvc,
                                                                        uninterrupted, tmp_path):
    project = copy_with_longer_training(smoke_local if engine == "snakemake" else smoke_dvc, tmp_path / engine)
    kill_mid_training(project, engine)
    finish(project, engine)
    resumed = quality_metrics(project)
    for name in ("thucnews10/backbones/char/bert.json", "thucnews10/curves/char/bert/eval.csv"):
        assert resumed[name] == uninterrupted[name], f"{name} differs from the uninterrupted run"
    leftovers = [p for p in (project / CHECKPOINT).parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], f"temp dirs of the killed run were not swept: {leftovers}"
