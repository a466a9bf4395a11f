"""Test helpers: scratch copies of the project with a profile applied, and engine runners."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MIRROR = os.environ.get("ZHBENCH_MIRROR") or str((ROOT.parent / "shared" / "data").resolve())
# Generated outputs are never copied: a scratch project starts like a fresh clone.
EXCLUDE_TOP = {"data", "models", "logs", "metrics", "reports", "dvc.lock", ".snakemake", ".venv"}


def project_files(root: Path = ROOT) -> list[str]:
    """Tracked files plus new, not-ignored ones: what a fresh clone of the working tree holds."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=root, check=True, capture_output=True).stdout.decode()
    return sorted(p for p in out.split("\0") if p and p.split("/")[0] not in EXCLUDE_TOP
                  and (root / p).is_file())


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{VENV_BIN}{os.pathsep}{e['PATH']}"
    e.setdefault("ZHBENCH_MIRROR", MIRROR)
    e["DVC_NO_ANALYTICS"] = "1"
    e["HF_HUB_OFFLINE"] = "1"
    e["TOKENIZERS_PARALLELISM"] = "false"
    e.update(extra)
    return e


def run(cmd: list[str], cwd: Path, timeout: float = 900, check: bool = True, **env_extra: str):
    proc = subprocess.run(cmd, cwd=cwd, env=env(**env_extra), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}:\n"
                             f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}")
    return proc


def make_smoke_project(dest: Path, profile: str | None = "smoke") -> Path:
    """Copy the project into `dest` as a new git repo (DVC needs one) with `profile` applied
    (None: keep params.yaml, the default profile)."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    if profile is not None:
        run([sys.executable, "-m", "zhbench.cli", "profile", "apply", profile], cwd=dest)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=zhbench-test", "-c", "user.email=test@localhost",
                 "commit", "-q", "-m", "scratch project"]):
        run(cmd, cwd=dest)
    return dest


# Files under metrics/ that describe the run, not its results: provenance.json records the scratch
# repo's git commit and the machine.
NOT_QUALITY = {"provenance.json"}


def quality_metrics(project: Path) -> dict[str, bytes]:
    """Every file under metrics/ (JSON, confusion and curve CSVs) except measured times
    (*_timing.json), which never repeat exactly, and the run's provenance."""
    root = project / "metrics"
    # Dotfiles are the engines' bookkeeping (Snakemake's .snakemake_timestamp in directory outputs).
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith("_timing.json")
            and p.name not in NOT_QUALITY}


# --- the README as a test: its command blocks, run as a new user would -----------------------------

README = ROOT / "README.md"
# Every ```bash block of the README carries one of these, on the line before it:
#   <!-- readme-test: snakemake-run -->  the pipeline run in a fresh clone (started at session start)
#   <!-- readme-test: dvc-run -->        the DVC reproduction in another fresh clone (started with it)
#   <!-- readme-test: snakemake -->      run in the Snakemake clone once its run is done, in README order
#   <!-- readme-test: dvc -->            run in the DVC clone once its run is done
#   <!-- readme-test: serve -->          started in the background in the Snakemake clone (a server)
#   <!-- readme-test: skip: <why> -->    shown, not run (the test suite itself, a SLURM cluster, hours)
READMETEST_KINDS = ("snakemake-run", "dvc-run", "snakemake", "dvc", "serve", "skip")


@dataclass(frozen=True)
class ReadmeBlock:
    line: int      # first line of the block's code in README.md
    kind: str
    code: str


def readme_blocks(path: Path = README) -> list[ReadmeBlock]:
    """The README's ```bash blocks with their readme-test annotations; a block without one fails."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            note = re.fullmatch(r"<!-- readme-test: ([a-z-]+)(?::.*)? -->", lines[i - 1].strip()) if i else None
            if not note or note.group(1) not in READMETEST_KINDS:
                raise AssertionError(f"{path}:{i + 1}: a ```bash block needs a `<!-- readme-test: KIND -->` line "
                                     f"before it, KIND one of {READMETEST_KINDS}")
            blocks.append(ReadmeBlock(start + 1, note.group(1), "\n".join(lines[start:end])))
            i = end
        i += 1
    return blocks


def new_shell_env(home: Path) -> dict[str, str]:
    """What a new login shell has: no venv on PATH, none of the variables the Makefile exports."""
    return {"HOME": str(home), "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "TERM": "dumb", "USER": os.environ.get("USER", "root")}


def make_fresh_clone(dest: Path, profile: str | None = "smoke") -> Path:
    """A scratch project as a user has it after `git clone` and `make setup`: the profile applied,
    the mirror set in config/mirror.yaml (the committed default points beside the real checkout),
    and .venv the one this test session runs in (so make does not install it again)."""
    installed = VENV_BIN.parent / ".installed"
    if not installed.is_file() or installed.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        raise AssertionError(f"{installed} is older than pyproject.toml: run `make setup` first")
    make_smoke_project(dest, profile)
    (dest / "config" / "mirror.yaml").write_text(f"mirror: {MIRROR}\n", encoding="utf-8")
    (dest / ".venv").symlink_to(VENV_BIN.parent)
    run(["git", "-c", "user.name=zhbench-test", "-c", "user.email=test@localhost", "commit", "-q", "-am",
         "mirror of this machine"], cwd=dest)
    return dest


def edit_params(project: Path, changes: dict[str, object]) -> bytes:
    """Set dotted keys of the project's params.yaml ({"data.name": "x"}); returns the file as it was."""
    path = project / "params.yaml"
    original = path.read_bytes()
    params = yaml.safe_load(original)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = params
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return original


def copy_tree(src: Path, dest: Path) -> Path:
    """A copy of a scratch project, its .venv link kept as a link."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


# --- what the session's background runs (conftest.py) do to copies of the smoke run ----------------

# The second clean run by DVC: one stage of each kind that trains or predicts and that no other test
# already runs twice (the baselines, linear_ngram, the TSV writer and pre-training repeat in their unit
# tests; char/bert in the kill-and-resume tests; fastText and char/albert on SLURM).
DVC_RERUN_STAGES = [
    "pretrain-albert", "train_backbone_pretrained-albert", "evaluate_backbone-pretrained-char-albert", "quantize-bert",
    "distill_tsv-ensemble", "train_student-ensemble", "fastbert-bert", "ensemble", "train_ner-cluener",
    "evaluate_ner-cluener", "train_pair-albert", "evaluate_pair-albert"]

# What the SLURM run redoes on a copy of the session's local run: one baseline and one backbone (neither
# feeds any stage but the report), so the engine is tested on real stages without retraining the DAG.
RERUN_ON_SLURM = ["models/thucnews10/fasttext_char", "metrics/thucnews10/fasttext_char.json",
                  "models/thucnews10/backbones/char/albert", "metrics/thucnews10/backbones/char/albert.json",
                  "reports/report.md"]

# The kill-and-resume tests: char/bert trains 60 steps instead of the smoke profile's 6, evaluating
# every 20, so that a kill lands during training, after its first evaluation line.
LONGER_TRAINING = {"train": {"max_steps": 60, "epochs": 10, "eval_every": 20}}
RESUME_COMMANDS = {
    "snakemake": ".venv/bin/snakemake metrics/thucnews10/backbones/char/bert.json",
    "dvc": ".venv/bin/dvc repro evaluate_backbone-char-bert",
}


def copy_with_longer_training(src: Path, dest: Path) -> Path:
    edit_params(copy_tree(src, dest), {"backbones.bert": LONGER_TRAINING})
    return dest


OWN_LABELS = {"7": "体育", "0": "财经", "8": "游戏"}  # THUCNews ids of sports, finance, game
OWN_TASK = "mytitles"


def write_own_csv_dataset(directory: Path) -> Path:
    """A 3-class dataset with string labels in CSV, from the mirrored THUCNews dev split: train.csv
    (300 titles) and test.csv (90), columns `title,category`; no dev file (the pipeline carves one)."""
    import csv

    rows = {k: [] for k in OWN_LABELS}
    for line in (Path(MIRROR) / "thucnews_10class_titles" / "dev.txt").read_text(encoding="utf-8").splitlines():
        title, label = line.split("\t")
        if label in rows:
            rows[label].append(title)
    directory.mkdir(parents=True)
    for split, (start, n) in {"train": (0, 100), "test": (100, 30)}.items():
        with (directory / f"{split}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["title", "category"])
            for i in range(start, start + n):  # interleaved classes
                for label, name in OWN_LABELS.items():
                    writer.writerow([rows[label][i], name])
    return directory


def make_pretrained_smoke_project(dest: Path) -> Path:
    """A fresh clone with tiny checkpoints of all ten families in checkpoints/tiny/, the
    pretrained-smoke profile applied (after they exist, so dvc.yaml lists them as dependencies), and
    for classification the user's own data: the 3-class CSV of write_own_csv_dataset, named OWN_TASK,
    with the linear baseline beside fastText and in the ensemble. So one run does what a user with
    checkpoints and a user with their own data do (tests/test_pretrained_smoke.py and
    tests/test_own_data_pipeline.py inspect it)."""
    from checkpoints import build_all, mirror_texts

    make_fresh_clone(dest, profile=None)
    texts = mirror_texts(MIRROR)
    build_all(dest / "checkpoints" / "tiny", texts[:20000] + texts[-3000:])
    run([sys.executable, "-m", "zhbench.cli", "profile", "apply", "pretrained-smoke"], cwd=dest)
    data = write_own_csv_dataset(dest.parent / "my-titles")
    edit_params(dest, {"data.path": str(data), "data.name": OWN_TASK, "data.text_columns": ["title"],
                       "data.label_column": "category", "baselines.models": ["fasttext_char", "linear_ngram"],
                       "ensemble.members": ["linear_ngram", "char/bert"]})
    run([sys.executable, "-m", "zhbench.cli", "dag", "export-dvc"], cwd=dest)
    run(["git", "-c", "user.name=zhbench-test", "-c", "user.email=test@localhost", "commit", "-q", "-am",
         "pretrained-smoke profile, own data"], cwd=dest)
    return dest


class ReadmeRun:
    """README blocks of one kind (or one command), run by bash in `project` in the background, logged
    to a file; in a new shell's environment unless `env` says otherwise."""

    @classmethod
    def command(cls, project: Path, command: str, name: str, env: dict[str, str] | None = None) -> "ReadmeRun":
        return cls(project, [ReadmeBlock(0, "command", command)], name, env)

    def __init__(self, project: Path, blocks: list[ReadmeBlock], name: str, env: dict[str, str] | None = None):
        self.project, self.name = project, name
        self.log = project.parent / f"{name}.log"
        script = "\n".join(f"# README.md:{b.line}\n{b.code}" for b in blocks)
        with self.log.open("w") as fh:
            self.proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=project,
                                         env=new_shell_env(project.parent) if env is None else env, stdout=fh,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float) -> Path:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.name} still running after {timeout:.0f} s; "
                                 f"log tail:\n{self.log.read_text(errors='replace')[-4000:]}") from None
        if rc != 0:
            raise AssertionError(f"{self.name} failed ({rc}); log tail:\n"
                                 f"{self.log.read_text(errors='replace')[-6000:]}")
        return self.project

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)


class Waitable(Protocol):
    """What a BackgroundRun's `start` returns: a ReadmeRun or a flows.Flow."""

    def wait(self, timeout: float) -> Any: ...

    def stop(self) -> None: ...


class BackgroundRun:
    """One run of the test session, whole, on a thread: wait for the runs it comes `after` (it fails
    if one of them did), `start()` it (prepare its project: a clone, a copy, a seeded cache) and wait
    for what that returns (a ReadmeRun, whose result is its project, or a flows.Flow, whose result is
    what it saw), then call `then(result)` before anyone waiting sees it (to copy the tree while no
    test is touching it yet). So the preparations, too, overlap the tests."""

    def __init__(self, name: str, start: Callable[[], Waitable], timeout: float,
                 after: Sequence["BackgroundRun"] = (), then: Callable[[Path], None] | None = None):
        self.name = name
        self.result = None
        self._run = None
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._go, args=(start, timeout, after, then), name=name, daemon=True)
        self._thread.start()

    def _go(self, start, timeout, after, then) -> None:
        try:
            for run in after:
                run.wait()
            if self._stopped.is_set():
                return
            self._run = start()
            if self._stopped.is_set():  # the session ended while this run was being prepared
                self._run.stop()
            result = self._run.wait(timeout)
            if then is not None:
                then(result)
            self.result = result
        except BaseException as e:  # handed to whoever waits
            self._error = e

    def wait(self):
        self._thread.join()
        if self._error is not None:
            raise AssertionError(f"{self.name}: {self._error}") from self._error
        if self.result is None:
            raise AssertionError(f"{self.name}: stopped before it finished")
        return self.result

    def stop(self) -> None:
        self._stopped.set()
        if self._run is not None:
            self._run.stop()
