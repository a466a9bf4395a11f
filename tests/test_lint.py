"""The workflow passes Snakemake's linter and snakefmt, and params.yaml and every profile validate."""
from __future__ import annotations

import pytest

from helpers import ROOT, run
from zhbench import params as P


def test_snakemake_lint_is_clean():
    proc = run(["snakemake", "--lint"], cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_snakefmt_is_clean():
    proc = run(["snakefmt", "--check", "workflow/Snakefile", "workflow/rules"], cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("profile", [None, "smoke", "paper"])
def test_params_validate_against_the_schema(profile):
    params = P.load(ROOT / "params.yaml")
    if profile:
        params = P.deep_merge(params, P.profile_overlay(profile, ROOT / "config"))
    P.validate(params, ROOT / "workflow/schemas/params.schema.yaml")


def test_schema_rejects_a_bad_value():
    import jsonschema

    params = P.load(ROOT / "params.yaml")
    params["backbones"]["train"]["batch_size"] = 0
    with pytest.raises(jsonschema.ValidationError, match="batch_size|minimum"):
        P.validate(params, ROOT / "workflow/schemas/params.schema.yaml")
