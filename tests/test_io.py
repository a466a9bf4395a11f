"""Atomic writes: nothing half-written survives a failure, and a killed writer's leftovers are swept."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from zhbench.io import atomic_dir, write_json


def test_a_failed_block_leaves_the_old_output_and_no_temp(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (out / "old.txt").read_text() == "old"


def test_a_killed_writers_temp_is_removed_by_the_next_writer_but_a_live_ones_is_not(tmp_path):
    target = tmp_path / "metrics.json"
    # A writer that dies by SIGKILL inside the block: no cleanup runs.
    code = ("import os, signal; from zhbench.io import atomic_dir, atomic_path\n"
            f"with atomic_path({str(target)!r}) as t:\n    t.write_text('half')\n"
            f"    with atomic_dir({str(tmp_path / 'model')!r}) as d:\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert len(leftovers) == 2 and all(n.endswith(".tmp") for n in leftovers)
    live = tmp_path / f".metrics.json.{os.getppid()}.xyz.tmp"  # a writer that is still alive
    live.write_text("in progress")
    write_json(target, {"a": 1})
    with atomic_dir(tmp_path / "model") as d:
        (d / "f").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["metrics.json", "model", live.name])
