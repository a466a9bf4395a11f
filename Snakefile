# zhbench: one rule file per family of stages; every rule runs a workflow/scripts/ entry point with
# the same command, deps, params and outs as its dvc.yaml stage (tests/test_workflow_parity.py).
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "params.yaml"


validate(config, "workflow/schemas/params.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/backbones.smk"
include: "workflow/rules/compress.smk"
include: "workflow/rules/tasks.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "reports/report.md",
