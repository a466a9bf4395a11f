# The accuracy/latency frontier: an ensemble of trained classifiers, and one latency measurement of
# every served model, side by side.


rule ensemble:
    input:
        data=f"data/processed/{TASK}",
        members=[layout.model_path(TASK, m) for m in config["ensemble"]["members"]],
        script="workflow/scripts/ensemble.py",
        code=code_deps("workflow/scripts/ensemble.py"),
    output:
        model=directory(f"models/{TASK}/ensemble"),
        metrics=f"metrics/{TASK}/ensemble.json",
        timing=f"metrics/{TASK}/ensemble_timing.json",
        confusion=f"metrics/{TASK}/ensemble_confusion.csv",
        figure="reports/figures/confusion_ensemble.png",
    log:
        "logs/ensemble.log",
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["ensemble"]["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        # members load from beside the ensemble, as they will when it is served
        models=lambda w, output: os.path.dirname(output.model),
        tracked=tracked("seed", "ensemble"),
    shell:
        "workflow/python {input.script} --params params.yaml --data {input.data} --models {params.models}"
        " --out {output.model} --metrics {output.metrics} --timing {output.timing}"
        " --confusion {output.confusion} --figure {output.figure} --log-file {log}"


rule latency:
    input:
        data=f"data/processed/{TASK}",
        models=[layout.model_path(TASK, m) for m in layout.served_models(config)],
        script="workflow/scripts/latency.py",
        code=code_deps("workflow/scripts/latency.py"),
    output:
        timing=f"metrics/{TASK}/latency_timing.json",
    log:
        "logs/latency.log",
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["latency"]["threads"]
    resources:
        cpu_share=LATENCY_TIMING,
        mem_mb=6000,
        runtime=60,
    params:
        names=layout.served_models(config),
        tracked=tracked("latency"),
    shell:
        "workflow/python {input.script} --params params.yaml --data {input.data}"
        " --model {params.names} --model-dir {input.models} --timing {output.timing} --log-file {log}"
