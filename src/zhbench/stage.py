"""What every stage entry point shares: argv conventions, logging, one-line errors."""
from __future__ import annotations

import argparse
import functools
import logging
import sys
from typing import Callable

from zhbench import params as P
from zhbench.runtime import setup_logging

log = logging.getLogger("zhbench.stage")

# Errors that mean "your input or config is wrong": print one clear line, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, RuntimeError)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--log-file", default=None, help="log file for this stage (logs/<stage>/...)")
    return p


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies.

    A pipeline killed hard (OOM killer, closed SSH session, `kill -9` of its process group) would
    otherwise leave a stage running as an orphan: torchrun's workers, for one, sit in a session
    of their own, out of reach of a process-group kill. Elsewhere than Linux this does nothing."""
    import ctypes
    import os
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect: nobody is waiting for us
        os._exit(1)


def launch_workers(nproc: int) -> int | None:
    """Under `nproc` > 1, start this same command as `nproc` DDP workers (torch.distributed.run,
    one private rendezvous) and return their exit status; return None when this process should do
    the work itself: one process, or already a worker. One process never goes through torchrun,
    so nothing but the stage itself is left to kill."""
    import os
    import subprocess

    if nproc <= 1 or "LOCAL_RANK" in os.environ:
        return None
    # --standalone: a private rendezvous on a free port, so parallel jobs never collide. torchrun's
    # parser matches abbreviations even among the script's arguments: no stage flag may be a
    # prefix of one of its flags (--nproc, --log are).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *sys.argv]
    log.info("starting %d DDP workers: %s", nproc, " ".join(cmd))
    return subprocess.run(cmd).returncode


def entry_point(fn: Callable[[argparse.Namespace, dict], None], build_parser: Callable[[], argparse.ArgumentParser]):
    """Wrap a stage body: parse argv, set up logging, load params, turn user errors into exit 1."""

    @functools.wraps(fn)
    def main(argv: list[str] | None = None) -> int:
        die_with_parent()
        args = build_parser().parse_args(argv)
        setup_logging(args.log_file)
        try:
            params = P.load(args.params)
            fn(args, params)
        except USER_ERRORS as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            log.error("%s", msg)
            print(f"error: {msg}", file=sys.stderr)
            return 1
        return 0

    return main
