# The report regenerates every table from metrics files only.


def report_inputs(wildcards):
    return {
        "stats": f"metrics/{TASK}/dataset_stats.json",
        "baselines": expand(f"metrics/{TASK}/{{model}}.json", model=config["baselines"]["models"]),
        "baseline_timings": expand(f"metrics/{TASK}/{{model}}_timing.json", model=config["baselines"]["models"]),
        "references": "config/references.yaml",
        "script": "workflow/scripts/report.py",
        "code": "src/zhbench/report.py",
    }


rule report:
    input:
        unpack(report_inputs),
    output:
        report="reports/report.md",
        provenance="metrics/provenance.json",
    params:
        tracked=tracked("profile", "baselines.models"),
    log:
        "logs/report.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script} --params params.yaml --metrics metrics --references {input.references}"
        " --out {output.report} --provenance {output.provenance} --log {log}"
