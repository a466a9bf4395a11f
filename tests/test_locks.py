"""A killed Snakemake's lock is cleared by the next run, but never while another Snakemake works there."""
from __future__ import annotations

import subprocess
import sys
import time

from zhbench.workflow.locks import clear_stale_snakemake_lock


def _lock(project):
    locks = project / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("data/x\n")
    return locks


def test_a_stale_lock_is_cleared_even_from_under_a_wrapper(tmp_path):
    locks = _lock(tmp_path)
    # the run itself sits under `timeout`, which names snakemake too: that is not another run
    code = "from zhbench.workflow.locks import clear_stale_snakemake_lock as c; print(c())"
    out = subprocess.run(["timeout", "60", sys.executable, "-c", code, "snakemake"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True" and list(locks.iterdir()) == []


def test_a_live_snakemake_in_the_directory_keeps_its_lock(tmp_path):
    locks = _lock(tmp_path)
    live = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 30"], cwd=tmp_path)
    try:
        time.sleep(0.3)
        assert clear_stale_snakemake_lock(tmp_path) is False and list(locks.iterdir())
    finally:
        live.kill()
        live.wait()
    assert clear_stale_snakemake_lock(tmp_path) is True and list(locks.iterdir()) == []
