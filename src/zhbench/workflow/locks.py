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


def _ancestors() -> set[int]:
    """This process and its parents: a `timeout snakemake ...` or a shell wrapping this run is this
    run, not another one."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def engine_processes(engine: str, project: Path) -> list[int]:
    """Pids of other live processes running `engine` (e.g. snakemake) with `project` as working directory."""
    project = project.resolve()
    ours = _ancestors()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in ours:
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(proc / "cwd"))
            zombie = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):  # gone meanwhile, or not ours to read
            continue
        if zombie:
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
