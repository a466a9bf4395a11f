"""The pipeline through a real SLURM: a one-node cluster on this machine, the slurm executor plugin.

Run with `make test-slurm` (or `pytest -m slurm tests/slurm`); `make test` deselects these tests by
marker. Nothing here skips on its own: without root, Debian packages or a free SLURM port the session
fixture fails, loudly. The cluster comes from tests/slurm/cluster.sh and is torn down again whatever
happens (conftest.py's session finalizer; `make test-slurm` also runs `cluster.sh down` afterwards, for a
killed pytest).

Environment:
  ZHBENCH_SLURM_DIR       cluster scratch dir (cluster.sh default /tmp/zhbench-slurm)
  ZHBENCH_SLURM_KEEP=1    leave the cluster running after the session (to poke at it; `cluster.sh down` ends it)
  ZHBENCH_SLURM_TIMEOUT   seconds one Snakemake run may take before it is killed (default 1200)
  ZHBENCH_MIRROR          the mirrored data dir; passed through to every SLURM job (sbatch --export=ALL)
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # helpers.py sits one level up; pytest only adds this file's dir
    sys.path.insert(0, str(TESTS))

from helpers import ROOT, env  # noqa: E402

SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm"
RUN_TIMEOUT = int(os.environ.get("ZHBENCH_SLURM_TIMEOUT", "1200"))

pytestmark = pytest.mark.slurm


# ---------------------------------------------------------------------------------------------- cluster
@pytest.fixture(scope="session")
def slurm_cluster(slurm_cluster_build):
    """A running single-node SLURM with accounting (sacct): conftest.py builds it in the background from
    the session's start and stops it when the session ends."""
    sys.stderr.write(slurm_cluster_build)


# ---------------------------------------------------------------------------------------------- helpers
def start_snakemake(project: Path, *args: str, log_name: str, **env_extra: str) -> subprocess.Popen:
    """Start Snakemake in `project` in its own process group, output to <project>/<log_name>.

    `timeout -k 10`: a Snakemake that lost track of its SLURM jobs ignores SIGTERM and waits forever,
    so after the timeout it gets SIGKILL ten seconds later.
    """
    cmd = ["timeout", "-k", "10", str(RUN_TIMEOUT), sys.executable, "-m", "snakemake", *args]
    with (project / log_name).open("w") as fh:
        return subprocess.Popen(cmd, cwd=project, env=env(**env_extra), stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_snakemake(proc: subprocess.Popen) -> int:
    """Wait for a run from start_snakemake(). If the test is interrupted meanwhile (pytest-timeout, Ctrl-C,
    SIGTERM), kill the whole process group: killing only `timeout` would leave Snakemake polling a
    cluster that is about to go away. Its SLURM jobs are cancelled by `cluster.sh down`."""
    try:
        return proc.wait()
    except BaseException:
        kill_group(proc)
        raise


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def snakemake(project: Path, *args: str, log_name: str, **env_extra: str) -> None:
    """Run Snakemake in `project`; fail with the tail of its output and of the SLURM logs on error."""
    t0 = time.monotonic()
    rc = wait_snakemake(start_snakemake(project, *args, log_name=log_name, **env_extra))
    sys.stderr.write(f"snakemake {' '.join(args)}: exit {rc} after {time.monotonic() - t0:.0f} s\n")
    if rc != 0:
        why = "timed out (killed)" if rc in (124, 137) else f"exit {rc}"
        log = project / log_name
        pytest.fail(f"snakemake {' '.join(args)} in {project}: {why}\n"
                    f"--- {log}\n{log.read_text()[-6000:]}\n{_slurm_log_tails(project)}", pytrace=False)


def _slurm_log_tails(project: Path) -> str:
    parts = []
    for path in sorted((project / ".snakemake" / "slurm_logs").rglob("*.log"))[-5:]:
        parts.append(f"--- {path}\n{path.read_text(errors='replace')[-1500:]}")
    return "\n".join(parts)


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
TINY_SNAKEFILE = r"""
# Three rules in a chain; each writes the SLURM job it ran in. b asks for 2 threads.
rule all:
    input: "b.txt"
    output: "all.txt"
    log: "logs/all.log"
    shell: "(cat {input}; echo all job=$SLURM_JOB_ID) > {output} 2> {log}"

rule a:
    output: "a.txt"
    log: "logs/a.log"
    shell: "echo a job=$SLURM_JOB_ID mirror=$ZHBENCH_MIRROR > {output} 2> {log}"

rule b:
    input: "a.txt"
    output: "b.txt"
    threads: 2
    log: "logs/b.log"
    shell: "(cat {input}; echo b job=$SLURM_JOB_ID cpus=$SLURM_CPUS_PER_TASK) > {output} 2> {log}"
"""


@pytest.mark.timeout(600, func_only=True)  # not the cluster build: apt on a shared machine
def test_cluster_runs_a_tiny_workflow(slurm_cluster, tmp_path):
    """The harness itself: profile + plugin + cluster run a 3-rule chain, every rule in its own job."""
    (tmp_path / "Snakefile").write_text(TINY_SNAKEFILE)
    snakemake(tmp_path, "--workflow-profile", str(SLURM_PROFILE), "all", log_name="snakemake-slurm.log",
              ZHBENCH_MIRROR="/mirror/passed/through")

    lines = (tmp_path / "all.txt").read_text().splitlines()
    assert lines[0].endswith("mirror=/mirror/passed/through"), lines  # the job saw the submitter's env
    ids = [line.split("job=")[1].split()[0] for line in lines]
    assert all(i.isdigit() for i in ids) and len(set(ids)) == 3, lines  # three distinct SLURM jobs
    # threads: 2 -> sbatch --cpus-per-task=2 and, inside the job, srun --cpus-per-task=2 (the profile's
    # `cpus_per_task: threads`); Slurm >= 22.05 no longer hands the sbatch value on to srun by itself.
    assert lines[1].endswith("cpus=2"), lines

    jobs = assert_ran_through_slurm(tmp_path, {"rule_a", "rule_b", "rule_all"})
    assert sorted(jobs) == sorted(ids)


# What the SLURM run redoes on a copy of the session's local run: one baseline and one backbone (neither
# feeds any stage but the report), so the engine is tested on real stages without retraining the DAG.
RERUN_ON_SLURM = ["models/thucnews10/fasttext_char", "metrics/thucnews10/fasttext_char.json",
                  "models/thucnews10/backbones/char/albert", "metrics/thucnews10/backbones/char/albert.json",
                  "reports/report.md"]


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT + 300, func_only=True)  # not the wait for the local run
def test_pipeline_on_slurm_matches_local_run(slurm_cluster, smoke_local, tmp_path):
    """`snakemake --workflow-profile workflow/profiles/slurm all` on a copy of the local smoke run with a
    baseline, a backbone and the report removed: SLURM jobs redo exactly those stages (every job
    COMPLETED in sacct), and the quality metrics are byte-identical to the local run's."""
    import shutil

    from helpers import quality_metrics

    on_slurm = tmp_path / "slurm"
    shutil.copytree(smoke_local, on_slurm, symlinks=True)
    for rel in RERUN_ON_SLURM:
        path = on_slurm / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    snakemake(on_slurm, "--workflow-profile", "workflow/profiles/slurm", "all", log_name="snakemake-slurm.log")

    jobs = assert_ran_through_slurm(
        on_slurm, {"rule_train_baseline", "rule_evaluate_baseline", "rule_train_backbone", "rule_evaluate_backbone",
                   "rule_latency", "rule_report"})  # latency times the retrained models again
    assert len(jobs) == 6, f"SLURM ran more than the removed stages: {sorted(jobs.values())}"

    slurm_metrics, local_metrics = quality_metrics(on_slurm), quality_metrics(smoke_local)
    assert sorted(slurm_metrics) == sorted(local_metrics), "the two runs wrote different metrics files"
    differ = [name for name in slurm_metrics if slurm_metrics[name] != local_metrics[name]]
    assert not differ, f"metrics differ between the SLURM and the local run: {differ}"
