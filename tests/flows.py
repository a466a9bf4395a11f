"""Engine flows of several steps that the session runs in the background on copies of its smoke runs
(conftest.py), beside the other runs instead of one after another in the test process: a pipeline
killed mid-training and resumed by the same command, and a changed param under DVC. Each returns what
it saw; tests/test_resume.py and tests/test_pipeline_e2e.py assert on it."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers import RESUME_COMMANDS, edit_params, env, new_shell_env, quality_metrics

TRAIN_LOG = Path("logs/train_backbone/char/bert.log")
CHECKPOINT = Path("models/thucnews10/backbones/char/bert")


class Flow:
    """`steps(flow)` run to its end on the calling thread (BackgroundRun's), every command through
    `sh` or `spawn` (at `nice`) so that `stop()` can kill the one in progress when the session ends
    early."""

    def __init__(self, project: Path, steps: Callable[["Flow"], object], nice: int = 0):
        self.project, self._steps, self._nice = project, steps, nice
        self._live: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.stopped = False

    def wait(self, timeout: float) -> object:  # each step has its own timeout
        return self._steps(self)

    def spawn(self, command: str, environ: dict[str, str], output=subprocess.PIPE) -> subprocess.Popen:
        """`command` started in the project, in a process group of its own; stdout and stderr to
        `output` (pipes unless a file)."""
        with self._lock:
            if self.stopped:
                raise RuntimeError("the session ended")
            proc = subprocess.Popen(["nice", "-n", str(self._nice), "bash", "-c", command], cwd=self.project, env=environ, stdout=output,
                                    stderr=subprocess.PIPE if output is subprocess.PIPE else subprocess.STDOUT,
                                    text=True, start_new_session=True)
            self._live.add(proc)
        return proc

    def sh(self, command: str, environ: dict[str, str] | None = None, timeout: float = 900) -> str:
        """Run `command` in the project (the venv on PATH unless `environ`); its stdout, or an error."""
        proc = self.spawn(command, env() if environ is None else environ)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"{command}: still running after {timeout} s in {self.project}") from None
        finally:
            self.forget(proc)
        if proc.returncode != 0:
            raise AssertionError(f"{command}: exit {proc.returncode} in {self.project}\n--- stdout\n{out[-3000:]}\n"
                                 f"--- stderr\n{err[-3000:]}")
        return out

    def forget(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._live.discard(proc)

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            for proc in self._live:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)


# --- kill and resume -------------------------------------------------------------------------------

@dataclass
class Resumed:
    """What a killed-and-resumed run left: live processes right after the kill, the checkpoint's
    files then (None: no checkpoint dir), the temp dirs beside it at the end, the quality metrics."""
    alive_after_kill: list[str]
    checkpoint_after_kill: set[str] | None
    leftover_tmp: list[str]
    metrics: dict[str, bytes]


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


def kill_and_resume(engine: str) -> Callable[[Flow], Resumed]:
    """The README's resume promise: the engine's command (helpers.RESUME_COMMANDS), in a new shell,
    SIGKILLed as a process group (as the OOM killer, a closed SSH session or a power cut would) once
    the char/bert training has logged its first evaluation, then the same command again."""
    command = RESUME_COMMANDS[engine]

    def steps(flow: Flow) -> Resumed:
        project = flow.project
        shell = new_shell_env(project.parent)
        engine_log = project.parent / f"{project.name}.killed.log"
        log = project / TRAIN_LOG
        # The copy holds its source run's training log, whose evaluations would end the wait below
        # at once and kill the engine before it had started the training.
        log.unlink(missing_ok=True)
        with engine_log.open("w") as out:
            proc = flow.spawn(command, shell, out)
        deadline = time.monotonic() + 600
        while not (log.is_file() and "Iter: " in log.read_text(encoding="utf-8", errors="replace")):
            if proc.poll() is not None:
                raise AssertionError(f"{engine} ended ({proc.returncode}) before the training could be killed:\n"
                                     f"{engine_log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("the training never reached its first evaluation")
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        flow.forget(proc)
        deadline = time.monotonic() + 15
        while processes_in(project) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = processes_in(project)
        checkpoint = project / CHECKPOINT
        files = {p.name for p in checkpoint.iterdir()} if checkpoint.exists() else None
        flow.sh(command, shell)
        leftovers = [p.name for p in checkpoint.parent.iterdir() if p.name.endswith(".tmp")]
        return Resumed(alive, files, leftovers, quality_metrics(project))

    return steps


# --- a changed param under DVC ---------------------------------------------------------------------

CHANGED_PARAM = {"baselines.fasttext_char.epoch": 9}


@dataclass
class ParamChange:
    """Stages `dvc repro` ran and `dvc metrics diff --json`, on the committed run unchanged and then
    with CHANGED_PARAM."""
    ran_unchanged: set[str]
    diff_unchanged: dict
    ran_changed: set[str]
    diff_changed: dict


def dvc_ran_stages(repro_output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", repro_output))


def change_a_param_under_dvc(flow: Flow) -> ParamChange:
    """The reference-run flow: commit metrics and dvc.lock to git, `dvc repro`, `dvc metrics diff`;
    then change CHANGED_PARAM and do both again."""
    flow.sh("git add -A && git -c user.name=t -c user.email=t@localhost commit -q -m 'reference run'")
    ran = dvc_ran_stages(flow.sh("dvc repro"))
    diff = json.loads(flow.sh("dvc metrics diff --json") or "{}")
    edit_params(flow.project, CHANGED_PARAM)
    ran_changed = dvc_ran_stages(flow.sh("dvc repro"))
    return ParamChange(ran, diff, ran_changed, json.loads(flow.sh("dvc metrics diff --json") or "{}"))
