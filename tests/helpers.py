"""Test helpers: scratch copies of the project with a profile applied, and engine runners."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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


def make_pretrained_smoke_project(dest: Path) -> Path:
    """A fresh clone with tiny checkpoints of all ten families in checkpoints/tiny/ and the
    pretrained-smoke profile applied (after they exist, so dvc.yaml lists them as dependencies)."""
    from checkpoints import build_all, mirror_texts

    make_fresh_clone(dest, profile=None)
    texts = mirror_texts(MIRROR)
    build_all(dest / "checkpoints" / "tiny", texts[:20000] + texts[-3000:])
    run([sys.executable, "-m", "zhbench.cli", "profile", "apply", "pretrained-smoke"], cwd=dest)
    run(["git", "-c", "user.name=zhbench-test", "-c", "user.email=test@localhost", "commit", "-q", "-am",
         "pretrained-smoke profile"], cwd=dest)
    return dest


OWN_LABELS = {"7": "体育", "0": "财经", "8": "游戏"}  # THUCNews ids of sports, finance, game


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


def make_own_data_project(dest: Path) -> Path:
    """A fresh clone whose classification data is the user's own 3-class CSV dataset, the smoke
    profile's classification stages over it with one backbone per granularity. NER, LCQMC and
    pre-training read no classification data, so they are off here (the smoke run covers them)."""
    make_fresh_clone(dest)
    data = write_own_csv_dataset(dest.parent / "my-titles")
    params = yaml.safe_load((dest / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(path=str(data), name="mytitles", text_columns=["title"], label_column="category")
    params["backbones"]["granularities"] = {"char": ["bert"], "word": ["bert"]}
    params["baselines"]["models"] = ["fasttext_char", "linear_ngram"]
    params["cache_timing"]["backbones"] = ["bert"]
    params["pretrain"]["families"] = []
    params["ner"]["variants"] = []
    params["pair"]["backbones"] = []
    params["ensemble"]["members"] = ["linear_ngram", "char/bert"]
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    run([sys.executable, "-m", "zhbench.cli", "dag", "export-dvc"], cwd=dest)
    run(["git", "-c", "user.name=zhbench-test", "-c", "user.email=test@localhost", "commit", "-q", "-am",
         "own data"], cwd=dest)
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
            os.killpg(self.proc.pid, 9)
            raise AssertionError(f"{self.name} still running after {timeout:.0f} s; "
                                 f"log tail:\n{self.log.read_text(errors='replace')[-4000:]}") from None
        if rc != 0:
            raise AssertionError(f"{self.name} failed ({rc}); log tail:\n"
                                 f"{self.log.read_text(errors='replace')[-6000:]}")
        return self.project
