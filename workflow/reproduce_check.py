"""Determinism check (`make reproduce-check`): run the smoke profile twice from clean, compare bytes.

Two scratch copies of the working tree (tests/helpers.py::make_smoke_project: a fresh clone with the
smoke profile applied), `snakemake --cores N all` in each, then:

- every quality-metrics file (tests/helpers.py::quality_metrics: metrics/**/*.json except
  *_timing.json and provenance.json) must be byte-identical, and the same set of files;
- reports/report.md must be byte-identical once its fenced blocks are removed
  (zhbench.report.deterministic_part drops `<!-- timing -->` and `<!-- provenance -->` blocks:
  measured times, figures drawn from them, git commit and platform change from run to run).

Exit 0 when both hold, 1 with a list of differing files (and the first differing lines of the
report) otherwise. Keeps the scratch copies with --keep for inspection.

    python workflow/reproduce_check.py [--cores 2] [--workdir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import difflib
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import make_smoke_project, quality_metrics, run  # noqa: E402

from zhbench.report import deterministic_part  # noqa: E402

REPORT = Path("reports") / "report.md"


def run_smoke(dest: Path, cores: int, timeout: float) -> None:
    start = time.perf_counter()
    make_smoke_project(dest)
    run(["snakemake", "--cores", str(cores), "all"], cwd=dest, timeout=timeout)
    print(f"  {dest}: smoke run done in {time.perf_counter() - start:.0f} s", flush=True)


def compare(a: Path, b: Path) -> list[str]:
    """Human-readable differences between two finished smoke projects (empty: reproducible)."""
    problems = []
    qa, qb = quality_metrics(a), quality_metrics(b)
    if not qa:
        problems.append(f"no quality metrics under {a / 'metrics'}")
    for name in sorted(set(qa) ^ set(qb)):
        problems.append(f"{name}: written by only one of the two runs")
    problems += [f"{name}: quality metrics differ" for name in sorted(set(qa) & set(qb)) if qa[name] != qb[name]]
    ra, rb = (p / REPORT for p in (a, b))
    if not (ra.is_file() and rb.is_file()):
        problems.append(f"{REPORT}: missing in one run")
        return problems
    da, db = (deterministic_part(p.read_text(encoding="utf-8")) for p in (ra, rb))
    if da != db:
        diff = list(difflib.unified_diff(da.splitlines(), db.splitlines(), "run 1", "run 2", lineterm="", n=1))
        problems.append(f"{REPORT}: tables differ outside the timing/provenance fences:\n" + "\n".join(diff[:40]))
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cores", type=int, default=2, help="snakemake --cores for each run (default 2)")
    p.add_argument("--workdir", default=None, help="where to put the two scratch projects (default: a temp dir)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed per smoke run")
    p.add_argument("--keep", action="store_true", help="keep the scratch projects")
    args = p.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="zhbench-reproduce-"))
    runs = [work / "run1", work / "run2"]
    for d in runs:
        if d.exists():
            shutil.rmtree(d)
    print(f"reproduce-check: two clean smoke runs under {work}", flush=True)
    try:
        for d in runs:  # one after the other: side by side they would fight over the cores
            run_smoke(d, args.cores, args.timeout)
        problems = compare(*runs)
        n_files = len(quality_metrics(runs[0]))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if problems:
        print("reproduce-check FAILED:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"reproduce-check OK: {n_files} quality-metrics files and the report tables are byte-identical "
          "(timing and provenance blocks excluded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
