"""A pipeline killed hard (SIGKILL to its process group, as the OOM killer, a closed SSH session or a
power cut would do) leaves no process and no half-written output behind, and the same command run
again completes with the quality metrics of an uninterrupted run. Once through Snakemake, once
through DVC, on copies of the session's smoke runs with the char/bert training made long enough to
be caught mid-way (tests/flows.py kill_and_resume, run in the background by conftest.py).
"""
from __future__ import annotations

import pytest

from flows import Resumed
from helpers import quality_metrics

pytestmark = pytest.mark.slow

CHECKPOINT_FILES = {"config.json", "model.safetensors", "head.safetensors", "zhbench.json", "tokenizer.json"}


@pytest.fixture(scope="module")
def uninterrupted(resume_uninterrupted) -> dict[str, bytes]:
    """The same training, not killed (conftest.py runs it in the background)."""
    return quality_metrics(resume_uninterrupted)


def check_resumed(resumed: Resumed, uninterrupted: dict[str, bytes]) -> None:
    assert resumed.alive_after_kill == [], "processes outlived the killed pipeline"
    # Either the engine removed the old checkpoint before the job and none was written, or it is whole.
    assert resumed.checkpoint_after_kill is None or CHECKPOINT_FILES <= resumed.checkpoint_after_kill
    for name in ("thucnews10/backbones/char/bert.json", "thucnews10/curves/char/bert/eval.csv"):
        assert resumed.metrics[name] == uninterrupted[name], f"{name} differs from the uninterrupted run"
    assert resumed.leftover_tmp == [], f"temp dirs of the killed run were not swept: {resumed.leftover_tmp}"


def test_killed_snakemake_run_leaves_nothing_behind_and_the_same_command_resumes(resumed_snakemake, uninterrupted):
    check_resumed(resumed_snakemake, uninterrupted)


def test_killed_dvc_run_leaves_nothing_behind_and_the_same_command_resumes(resumed_dvc, uninterrupted):
    check_resumed(resumed_dvc, uninterrupted)
