"""Where a run's numbers came from: package versions, device, threads, git commit, params hash."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata

from zhbench.devices import device_name

PACKAGES = ("zhbench", "torch", "transformers", "tokenizers", "numpy", "scikit-learn", "fasttext-numpy2-wheel",
            "jieba", "optuna", "pytorch-crf", "seqeval", "onnxruntime", "snakemake", "dvc")


def head_commit(cwd: str | os.PathLike | None = None) -> str:
    """The commit HEAD names in the checkout at `cwd` ("unknown" outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else "unknown"


def git_commit(cwd: str | os.PathLike = ".") -> str:
    """head_commit, with "+dirty" when tracked files differ from it: the numbers of a run may come
    from uncommitted code."""
    commit = head_commit(cwd)
    if commit == "unknown":
        return commit
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def params_hash(params: dict) -> str:
    canonical = json.dumps(params, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def collect(params: dict) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        threads = None
    return {
        "profile": params.get("profile", "default"),
        "params_sha256_16": params_hash(params),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "packages": versions,
    }
