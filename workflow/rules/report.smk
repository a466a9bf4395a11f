# The report regenerates every table from metrics files only.


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
        " --out {output.report} --provenance {output.provenance} --log-file {log}"
