# Ten transformer backbones through one training path, per granularity (char | word).
# The feature cache (data/processed/features) is a side cache shared by the train and evaluate
# stages, written atomically; it is no stage's output, so it never triggers a rerun.

BACKBONES = [
    "bert",
    "albert",
    "t5",
    "xlnet",
    "electra",
    "roberta",
    "macbert",
    "ernie",
    "mengzi",
    "nezha",
]


rule build_vocab:
    input:
        data=f"data/processed/{TASK}",
        script="workflow/scripts/build_vocab.py",
        code=code_deps("workflow/scripts/build_vocab.py"),
    output:
        directory(f"models/{TASK}/vocab/{{granularity}}"),
    log:
        "logs/build_vocab/{granularity}.log",
    wildcard_constraints:
        granularity="char|word",
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        tracked=tracked("backbones.vocab.{granularity}"),
    shell:
        "workflow/python {input.script} --params params.yaml --granularity {wildcards.granularity} --data {input.data}"
        " --out {output} --log-file {log}"


rule train_backbone:
    input:
        data=f"data/processed/{TASK}",
        vocab=f"models/{TASK}/vocab/{{granularity}}",
        pretrained=backbone_checkpoint,
        script="workflow/scripts/train_backbone.py",
        code=code_deps("workflow/scripts/train_backbone.py"),
    output:
        model=directory(f"models/{TASK}/backbones/{{granularity}}/{{backbone}}"),
        curves=directory(f"metrics/{TASK}/curves/{{granularity}}/{{backbone}}"),
        timing=f"metrics/{TASK}/backbones/{{granularity}}/{{backbone}}_train_timing.json",
    log:
        "logs/train_backbone/{granularity}/{backbone}.log",
    wildcard_constraints:
        granularity="char|word",
        backbone="|".join(BACKBONES),
    conda:
        "../envs/zhbench.yaml"
    threads:
        lambda w: config["backbones"]["train"]["threads"]
        * config["backbones"]["nproc_per_node"]
    resources:
        mem_mb=lambda w: 3000 * config["backbones"]["nproc_per_node"],
        runtime=240,
    params:
        nproc=config["backbones"]["nproc_per_node"],
        tracked=tracked(
            "seed",
            "backbones.size",
            "backbones.dropout",
            "backbones.nproc_per_node",
            "backbones.train",
            "backbones.{backbone}",
        ),
    shell:
        "workflow/python {input.script} --params params.yaml --workers {params.nproc}"
        " --backbone {wildcards.backbone}"
        " --granularity {wildcards.granularity} --data {input.data} --vocab {input.vocab}"
        " --cache data/processed/features --out {output.model} --curves {output.curves}"
        " --timing {output.timing} --log-file {log}"


rule pretrain:
    input:
        corpus="data/processed/corpus",
        vocab=f"models/{TASK}/vocab/char",
        script="workflow/scripts/pretrain.py",
        code=code_deps("workflow/scripts/pretrain.py"),
    output:
        model=directory(layout.pretrained_dir(TASK, "{backbone}")),
        metrics=f"metrics/{TASK}/pretrain/{{backbone}}.json",
        timing=f"metrics/{TASK}/pretrain/{{backbone}}_timing.json",
    log:
        "logs/pretrain/{backbone}.log",
    wildcard_constraints:
        backbone="|".join(BACKBONES),
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["pretrain"]["threads"]
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        tracked=tracked("seed", "pretrain"),
    shell:
        "workflow/python {input.script} --params params.yaml --backbone {wildcards.backbone}"
        " --corpus {input.corpus} --vocab {input.vocab} --out {output.model} --metrics {output.metrics}"
        " --timing {output.timing} --log-file {log}"


# The "pretrained here" rows: each family fine-tuned from its own pretrain stage's checkpoint, with
# the settings of its from-scratch char run, so the two rows differ in their starting weights only.
rule train_backbone_pretrained:
    input:
        data=f"data/processed/{TASK}",
        vocab=f"models/{TASK}/vocab/char",
        pretrained=layout.pretrained_dir(TASK, "{backbone}"),
        script="workflow/scripts/train_backbone.py",
        code=code_deps("workflow/scripts/train_backbone.py"),
    output:
        model=directory(f"models/{TASK}/backbones/pretrained-char/{{backbone}}"),
        curves=directory(f"metrics/{TASK}/curves/pretrained-char/{{backbone}}"),
        timing=f"metrics/{TASK}/backbones/pretrained-char/{{backbone}}_train_timing.json",
    log:
        "logs/train_backbone/pretrained-char/{backbone}.log",
    wildcard_constraints:
        backbone="|".join(BACKBONES),
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["backbones"]["train"]["threads"]
    resources:
        mem_mb=3000,
        runtime=240,
    params:
        tracked=tracked(
            "seed",
            "backbones.size",
            "backbones.dropout",
            "backbones.train",
            "backbones.{backbone}",
        ),
    shell:
        "workflow/python {input.script} --params params.yaml --backbone {wildcards.backbone}"
        " --granularity char --pretrained {input.pretrained} --data {input.data} --vocab {input.vocab}"
        " --cache data/processed/features --out {output.model} --curves {output.curves}"
        " --timing {output.timing} --log-file {log}"


rule evaluate_backbone:
    input:
        data=f"data/processed/{TASK}",
        model=f"models/{TASK}/backbones/{{granularity}}/{{backbone}}",
        script="workflow/scripts/evaluate_backbone.py",
        code=code_deps("workflow/scripts/evaluate_backbone.py"),
    output:
        metrics=f"metrics/{TASK}/backbones/{{granularity}}/{{backbone}}.json",
        timing=f"metrics/{TASK}/backbones/{{granularity}}/{{backbone}}_timing.json",
        confusion=f"metrics/{TASK}/backbones/{{granularity}}/{{backbone}}_confusion.csv",
        figure="reports/figures/confusion_{granularity}_{backbone}.png",
    log:
        "logs/evaluate_backbone/{granularity}/{backbone}.log",
    wildcard_constraints:
        granularity="char|word|pretrained-char",
        backbone="|".join(BACKBONES),
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        cpu_share=LATENCY_TIMING,
        mem_mb=2000,
        runtime=30,
    params:
        tracked=tracked("profile", "data.variant"),
    shell:
        "workflow/python {input.script} --params params.yaml --data {input.data} --model-dir {input.model}"
        " --cache data/processed/features --metrics {output.metrics} --timing {output.timing}"
        " --confusion {output.confusion} --figure {output.figure} --log-file {log}"


rule cache_timing:
    input:
        data=f"data/processed/{TASK}",
        vocab=f"models/{TASK}/vocab/char",
        pretrained=lambda w: checkpoint_input(
            backbone_option(config["backbones"], w.backbone, "char", "pretrained")
        ),
        script="workflow/scripts/cache_timing.py",
        code=code_deps("workflow/scripts/cache_timing.py"),
    output:
        metrics=f"metrics/{TASK}/cache/{{backbone}}.json",
        timing=f"metrics/{TASK}/cache/{{backbone}}_timing.json",
    log:
        "logs/cache_timing/{backbone}.log",
    wildcard_constraints:
        backbone="|".join(BACKBONES),
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["cache_timing"]["threads"]
    resources:
        cpu_share=LATENCY_TIMING,
        mem_mb=2000,
        runtime=30,
    params:
        tracked=tracked(
            "seed",
            "data.variant",
            "cache_timing",
            "backbones.size",
            "backbones.{backbone}",
        ),
    shell:
        "workflow/python {input.script} --params params.yaml --backbone {wildcards.backbone} --data {input.data}"
        " --vocab {input.vocab} --metrics {output.metrics} --timing {output.timing} --log-file {log}"
