# Random Forest, fastText and linear n-gram baselines: train, then evaluate on dev and test.

BASELINES = (
    "random_forest",
    "fasttext_char",
    "fasttext_char_tuned",
    "fasttext_word",
    "linear_ngram",
)


rule train_baseline:
    input:
        data=f"data/processed/{TASK}",
        script="workflow/scripts/train_baseline.py",
        code=code_deps("workflow/scripts/train_baseline.py"),
    output:
        model=directory(f"models/{TASK}/{{model}}"),
        timing=f"metrics/{TASK}/{{model}}_train_timing.json",
    log:
        "logs/train_baseline/{model}.log",
    wildcard_constraints:
        model="|".join(BASELINES),
    conda:
        "../envs/zhbench.yaml"
    # fastText trains with thread=1 (deterministic); the forest's fit may use more.
    threads: lambda w: config["baselines"][w.model].get("threads", 1)
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        tracked=tracked("seed", "baselines.{model}"),
    shell:
        "workflow/python {input.script} --params params.yaml --model {wildcards.model} --data {input.data}"
        " --out {output.model} --timing {output.timing} --log-file {log}"


rule evaluate_baseline:
    input:
        data=f"data/processed/{TASK}",
        model=f"models/{TASK}/{{model}}",
        train_timing=f"metrics/{TASK}/{{model}}_train_timing.json",
        script="workflow/scripts/evaluate_baseline.py",
        code=code_deps("workflow/scripts/evaluate_baseline.py"),
    output:
        metrics=f"metrics/{TASK}/{{model}}.json",
        timing=f"metrics/{TASK}/{{model}}_timing.json",
        confusion=f"metrics/{TASK}/{{model}}_confusion.csv",
        figure="reports/figures/confusion_{model}.png",
    log:
        "logs/evaluate_baseline/{model}.log",
    wildcard_constraints:
        model="|".join(BASELINES),
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        cpu_share=LATENCY_TIMING,
        mem_mb=2000,
        runtime=15,
    params:
        tracked=tracked("profile", "data.variant"),
    shell:
        "workflow/python {input.script} --params params.yaml --model {wildcards.model} --data {input.data}"
        " --model-dir {input.model} --metrics {output.metrics} --train-timing {input.train_timing}"
        " --timing {output.timing}"
        " --confusion {output.confusion} --figure {output.figure} --log-file {log}"
