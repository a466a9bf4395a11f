# The report regenerates every table from metrics files only.


rule report:
    input:
        unpack(report_inputs),
    output:
        report="reports/report.md",
        html="reports/report.html",
        provenance="metrics/provenance.json",
        figures=report_figures(),
    log:
        "logs/report.log",
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        tracked=tracked(
            "profile",
            "data.variant",
            "baselines.models",
            "backbones.size",
            "backbones.granularities",
            "quantize.backbones",
            "fastbert.backbones",
            "cache_timing.backbones",
            "ner.variants",
            "pair.backbones",
        ),
    shell:
        "workflow/python {input.script} --params params.yaml --metrics metrics --references {input.references}"
        " --out {output.report} --html {output.html} --provenance {output.provenance} --log-file {log}"
