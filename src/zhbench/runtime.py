"""Process-wide run settings every stage applies first: seeds, thread counts, logging."""
from __future__ import annotations

import logging
import os
import random
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("zhbench")


def seed_everything(seed: int, *, with_torch: bool = True) -> None:
    """Seed python, numpy and torch, and ask torch for deterministic kernels (CPU is then exact).
    with_torch=False is for the stages that use no torch (the baselines): importing it only to seed
    it would cost each of them ~2 CPU-seconds (AMD EPYC)."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if not with_torch:
        return
    try:
        import torch
    except ImportError:  # the data stages run without torch
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def set_threads(n: int) -> None:
    """Match torch's intra-op threads to what the scheduler gave this stage (Snakemake `threads`)."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(max(1, int(n)))


def setup_logging(log_file: str | os.PathLike | None) -> logging.Logger:
    """Log to stderr and, when given, to the stage's own log file (logs/<stage>.log)."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(fmt)
    root.addHandler(handler)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, mode="w", encoding="utf-8")
        fh.setFormatter(fmt)
        root.addHandler(fh)
    return log


def fastest_interleaved(tasks: dict, min_rounds: int, max_seconds: float = float("inf")) -> dict:
    """Each task's fastest run, in seconds. Every round runs every task once, in turn (a task is
    called with the round number), and each task keeps its fastest round, as timeit does. On a
    shared CPU a slow run measures the neighbours; taking turns puts every task under the same
    conditions, so ratios between tasks compare like with like. Stops after `min_rounds` rounds, or
    earlier once `max_seconds` have passed and at least 2 rounds are done. Warm-up is the caller's."""
    import time

    best = {name: float("inf") for name in tasks}
    start, rounds = time.perf_counter(), 0
    while rounds < min_rounds:
        for name, task in tasks.items():
            t0 = time.perf_counter()
            task(rounds)
            best[name] = min(best[name], time.perf_counter() - t0)
        rounds += 1
        if rounds >= 2 and time.perf_counter() - start > max_seconds:
            break
    return best
