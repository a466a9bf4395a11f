"""Recover from a hard stop: clear the lock a killed Snakemake left behind, when no live Snakemake
works in this directory.

Snakemake locks its outputs in .snakemake/locks/ and removes the lock on a clean exit only, so
after a SIGKILL the next run stops with a LockException. It leaves the clearing to the user
because it cannot tell a dead run from one in another terminal; here "live" is checked the way
the kernel sees it: a process whose command line runs snakemake and whose working directory is
this project. (DVC needs no help: its rwlock drops the entries of pids that no longer exist.)
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def engine_processes(engine: str, project: Path) -> list[int]:
    """Pids of other live processes running `engine` (e.g. snakemake) with `project` as working directory."""
    project = project.resolve()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
        words = [Path(a.decode(errors="replace")).name for a in argv[:3]]
        if engine in words and cwd == project:
            found.append(int(proc.name))
    return found


def clear_stale_snakemake_lock(project: str | os.PathLike = ".") -> bool:
    """Remove Snakemake's lock files in `project` (what `snakemake --unlock` removes) when no other
    Snakemake process runs there; True if there were any. The Snakefile calls this as it loads, so
    the same command that was killed also resumes."""
    project = Path(project)
    locks = project / ".snakemake" / "locks"
    stale = sorted(locks.glob("*.lock")) if locks.is_dir() else []
    if not stale:
        return False
    live = engine_processes("snakemake", project)
    if live:
        log.info("snakemake is running here (pids %s): its lock stays", live)
        return False
    for lock in stale:
        lock.unlink(missing_ok=True)
    return True
