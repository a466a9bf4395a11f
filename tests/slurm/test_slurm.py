"""The pipeline through a real SLURM: a one-node cluster on this machine, the slurm executor plugin.

`make test` runs these tests where the machine allows (root and apt-get on Debian; elsewhere they are
listed as skipped, with the reason); `make test-slurm` runs them alone. Beyond that nothing here skips:
without a free SLURM port the cluster build fails, loudly. The cluster comes from tests/slurm/cluster.sh;
conftest.py builds it in the background from the session's start, runs the Snakemake workflows of the
tests below on it as soon as it is up (and the local smoke run has finished), and tears it down again
whatever happens (the session finalizer; `make test` and `make test-slurm` also run `cluster.sh down`
afterwards, for a killed pytest).

Environment:
  ZHBENCH_SLURM_DIR       cluster scratch dir (cluster.sh default /tmp/zhbench-slurm)
  ZHBENCH_SLURM_KEEP=1    leave the cluster running after the session (to poke at it; `cluster.sh down` ends it)
  ZHBENCH_SLURM_TIMEOUT   seconds one Snakemake run may take before it is killed (default 1200)
  ZHBENCH_MIRROR          the mirrored data dir; passed through to every SLURM job (sbatch --export=ALL)
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # helpers.py sits one level up; pytest only adds this file's dir
    sys.path.insert(0, str(TESTS))

from helpers import quality_metrics  # noqa: E402

pytestmark = pytest.mark.slurm


# ---------------------------------------------------------------------------------------------- helpers
def slurm_job_ids(project: Path) -> dict[str, str]:
    """{SLURM job id: rule} from the plugin's per-job logs, .snakemake/slurm_logs/rule_<rule>/[<wc>/]<id>.log
    (the profile keeps the logs of successful jobs too)."""
    jobs = {}
    for path in (project / ".snakemake" / "slurm_logs").rglob("*.log"):
        rule_dir = next(p for p in path.relative_to(project / ".snakemake" / "slurm_logs").parts
                        if p.startswith("rule_"))
        jobs[path.stem] = rule_dir
    return jobs


def sacct_records(job_ids: list[str], timeout: float = 60) -> dict[str, tuple[str, str, str]]:
    """{job id: (JobName, State, Comment)} from the accounting database, waiting until every job has a
    final state there (slurmctld sends job-end records to slurmdbd asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids),
                              "-o", "JobID,JobName,State,Comment"],
                             capture_output=True, text=True, check=True).stdout
        records = {}
        for line in out.splitlines():
            job_id, name, state, comment = line.split("|", 3)
            records[job_id] = (name, state, comment)
        settled = len(records) == len(job_ids) and all(
            state not in ("PENDING", "RUNNING", "COMPLETING") for _, state, _ in records.values())
        if settled or time.monotonic() > deadline:
            return records
        time.sleep(2)


def assert_ran_through_slurm(project: Path, expected_rules: set[str]) -> dict[str, str]:
    jobs = slurm_job_ids(project)
    ran = set(jobs.values())
    assert expected_rules <= ran, f"no SLURM job logs for {sorted(expected_rules - ran)}"
    records = sacct_records(sorted(jobs))
    assert set(records) == set(jobs), f"sacct does not know jobs {sorted(set(jobs) - set(records))}"
    not_completed = {j: r for j, r in records.items() if r[1] != "COMPLETED"}
    assert not not_completed, f"SLURM jobs not COMPLETED: {not_completed}"
    # The plugin names every job of one Snakemake run after the run's UUID, and comments it with the rule.
    assert len({name for name, _, _ in records.values()}) == 1, records
    assert all(comment.startswith(jobs[j]) for j, (_, _, comment) in records.items()), records
    return jobs


# ---------------------------------------------------------------------------------------------- tests
def test_cluster_runs_a_tiny_workflow(slurm_tiny_run):
    """The harness itself: profile + plugin + cluster run a 3-rule chain (tests/slurm/tiny/Snakefile),
    every rule in its own job."""
    lines = (slurm_tiny_run / "all.txt").read_text().splitlines()
    assert lines[0].endswith("mirror=/mirror/passed/through"), lines  # the job saw the submitter's env
    ids = [line.split("job=")[1].split()[0] for line in lines]
    assert all(i.isdigit() for i in ids) and len(set(ids)) == 3, lines  # three distinct SLURM jobs
    # threads: 2 -> sbatch --cpus-per-task=2 and, inside the job, srun --cpus-per-task=2 (the profile's
    # `cpus_per_task: threads`); Slurm >= 22.05 no longer hands the sbatch value on to srun by itself.
    assert lines[1].endswith("cpus=2"), lines

    jobs = assert_ran_through_slurm(slurm_tiny_run, {"rule_a", "rule_b", "rule_all"})
    assert sorted(jobs) == sorted(ids)


@pytest.mark.slow
def test_pipeline_on_slurm_matches_local_run(slurm_pipeline_run, smoke_local):
    """`snakemake --workflow-profile workflow/profiles/slurm all` on a copy of the local smoke run without
    helpers.RERUN_ON_SLURM (a baseline, a backbone and the report): SLURM jobs redo exactly those stages
    (every job COMPLETED in sacct), and the quality metrics are byte-identical to the local run's."""
    jobs = assert_ran_through_slurm(
        slurm_pipeline_run, {"rule_train_baseline", "rule_evaluate_baseline", "rule_train_backbone",
                             "rule_evaluate_backbone", "rule_latency", "rule_report"})  # latency times them again
    assert len(jobs) == 6, f"SLURM ran more than the removed stages: {sorted(jobs.values())}"

    slurm_metrics, local_metrics = quality_metrics(slurm_pipeline_run), quality_metrics(smoke_local)
    assert sorted(slurm_metrics) == sorted(local_metrics), "the two runs wrote different metrics files"
    differ = [name for name in slurm_metrics if slurm_metrics[name] != local_metrics[name]]
    assert not differ, f"metrics differ between the SLURM and the local run: {differ}"
