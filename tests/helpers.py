"""Test helpers: scratch copies of the project with a profile applied, and engine runners."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
