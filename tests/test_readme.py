"""The README is executable: its command blocks, pasted into a new shell of a fresh clone, work.

The two pipeline blocks (`make run`, and `make setup` + `dvc repro`) are the session's smoke runs
(conftest.py; `dvc repro` finds the `make run` tree's outputs in its cache, as after a `dvc pull`). Here the remaining blocks run after them, in README order and in the environment of
a new shell (no venv on PATH, none of the Makefile's variables), and so do the "Regenerate:" commands
under every table of the report the run produced.
"""
from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers import README, ReadmeBlock, new_shell_env, readme_blocks

pytestmark = pytest.mark.slow

SERVE_PORT = 8000  # the README's `make serve` default


def bash(block: str, project: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=project, env=new_shell_env(project.parent),
                          capture_output=True, text=True, timeout=timeout)


def check(block: ReadmeBlock, proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, (f"README.md:{block.line}: exit {proc.returncode}\n{block.code}\n--- stdout\n"
                                  f"{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    return proc.stdout


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def test_every_bash_block_says_how_it_is_tested():
    blocks = readme_blocks()  # raises on a block without a readme-test line
    kinds = {b.kind for b in blocks}
    assert {"snakemake-run", "dvc-run", "snakemake", "dvc", "serve"} <= kinds
    # An indented (4-space) shell command would escape the test: commands live in ```bash blocks.
    indented = [i for i, line in enumerate(README.read_text(encoding="utf-8").split("\n"), start=1)
                if re.match(r"    (\.venv/bin/|make |curl |snakemake |dvc )", line)]
    assert not indented, f"README.md lines {indented}: put commands in a ```bash block with a readme-test line"


def test_readme_blocks_work_in_a_new_shell(smoke_local, smoke_dvc):
    server = None
    try:
        for block in readme_blocks():
            if block.kind == "serve":
                server = subprocess.Popen(["bash", "-c", block.code], cwd=smoke_local,
                                          env=new_shell_env(smoke_local.parent), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True, start_new_session=True)
                wait_for_port(SERVE_PORT, server)
            elif block.kind in ("snakemake", "dvc"):
                out = check(block, bash(block.code, smoke_local if block.kind == "snakemake" else smoke_dvc))
                if block.code.startswith("curl") and "/predict" in block.code:
                    predictions = json.loads(out)["predictions"]
                    assert [p["label"] for p in predictions] and all(0 < p["probability"] <= 1 for p in predictions)
    finally:
        if server is not None:
            import os
            import signal

            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    assert (smoke_dvc / "dvc_plots" / "index.html").is_file()


def regenerate_commands(report: Path) -> list[str]:
    text = report.read_text(encoding="utf-8")
    return sorted(set(re.findall(r"`(\.venv/bin/(?:snakemake|dvc repro) [^`]+)`", text)))


def test_report_regenerate_commands_work_and_find_everything_done(smoke_local, smoke_dvc):
    commands = regenerate_commands(smoke_local / "reports" / "report.md")
    assert any(c.startswith(".venv/bin/snakemake") for c in commands)
    assert any(c.startswith(".venv/bin/dvc repro") for c in commands)
    snakemake = [c for c in commands if c.startswith(".venv/bin/snakemake")]
    # One Snakemake call for all of them: each would parse the whole workflow again.
    targets = " ".join(c.split(" ", 1)[1] for c in snakemake)
    block = ReadmeBlock(0, "snakemake", f".venv/bin/snakemake {targets}")
    proc = bash(block.code, smoke_local)
    assert "Nothing to be done" in check(block, proc) + proc.stderr
    dvc = sorted({stage for c in commands if c.startswith(".venv/bin/dvc repro --glob") for stage in c.split()[3:]})
    block = ReadmeBlock(0, "dvc", f".venv/bin/dvc repro --glob {' '.join(dvc)}")
    out = check(block, bash(block.code, smoke_dvc))
    assert "Running stage" not in out, out[-3000:]
