# The other write-ups' tasks: BERT+CRF NER (CLUENER, People's Daily 1998) and ALBERT vs BERT
# sentence-pair matching (LCQMC). Each dataset is fetched by the same download stage.

# dataset directory -> registry variant
TASK_DATASETS = {
    "cluener": "cluener",
    "pd1998": "pd1998-devtest",
    "lcqmc": "lcqmc-devtest",
}
if TASK != layout.WRITEUP_DATASET:
    # With your own classification data, the pretraining corpus still takes THUCNews' training
    # titles and keeps its evaluation titles out (zhbench.data.corpus_sources).
    TASK_DATASETS[layout.WRITEUP_DATASET] = "thucnews10-33k"
# NER variant -> (dataset directory, train file, evaluation file). The mirror has no train split
# for People's Daily 1998: it trains on dev and evaluates on test, and says so in its metrics.
NER_DATA = {
    "cluener": ("cluener", "train.json", "dev.json"),
    "pd1998-devtest": ("pd1998", "example.dev", "example.test"),
}


rule download_task_data:
    input:
        script="workflow/scripts/download.py",
        code=code_deps("workflow/scripts/download.py"),
    output:
        directory("data/raw/{dataset}"),
    log:
        "logs/download/{dataset}.log",
    wildcard_constraints:
        dataset="|".join(TASK_DATASETS),
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        variant=lambda w: TASK_DATASETS[w.dataset],
        tracked=tracked(),
    shell:
        "workflow/python {input.script} --params params.yaml --variant {params.variant} --out {output} --log-file {log}"


rule train_ner:
    input:
        raw=lambda w: f"data/raw/{NER_DATA[w.variant][0]}",
        pretrained=lambda w: checkpoint_input(
            (config["ner"].get("per_variant") or {})
            .get(w.variant, {})
            .get("pretrained", config["ner"].get("pretrained")),
            (config["ner"].get("per_variant") or {})
            .get(w.variant, {})
            .get("backbone", config["ner"].get("backbone", "bert")),
        ),
        script="workflow/scripts/train_ner.py",
        code=code_deps("workflow/scripts/train_ner.py"),
    output:
        model=directory("models/ner/{variant}"),
        timing="metrics/ner/{variant}_train_timing.json",
    log:
        "logs/train_ner/{variant}.log",
    wildcard_constraints:
        variant="|".join(NER_DATA),
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["ner"]["threads"]
    resources:
        mem_mb=3000,
        runtime=180,
    params:
        train=lambda w: f"data/raw/{NER_DATA[w.variant][0]}/{NER_DATA[w.variant][1]}",
        tracked=tracked("seed", "ner"),
    shell:
        "workflow/python {input.script} --params params.yaml --variant {wildcards.variant} --train {params.train}"
        " --out {output.model} --timing {output.timing} --log-file {log}"


rule evaluate_ner:
    input:
        raw=lambda w: f"data/raw/{NER_DATA[w.variant][0]}",
        model="models/ner/{variant}",
        train_timing="metrics/ner/{variant}_train_timing.json",
        script="workflow/scripts/evaluate_ner.py",
        code=code_deps("workflow/scripts/evaluate_ner.py"),
    output:
        metrics="metrics/ner/{variant}.json",
        timing="metrics/ner/{variant}_timing.json",
        predictions="reports/ner/{variant}_predictions.jsonl",
    log:
        "logs/evaluate_ner/{variant}.log",
    wildcard_constraints:
        variant="|".join(NER_DATA),
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        eval=lambda w: f"data/raw/{NER_DATA[w.variant][0]}/{NER_DATA[w.variant][2]}",
        tracked=tracked("ner.max_eval_sentences", "ner.per_variant"),
    shell:
        "workflow/python {input.script} --params params.yaml --variant {wildcards.variant} --model {input.model}"
        " --eval {params.eval} --metrics {output.metrics} --train-timing {input.train_timing}"
        " --timing {output.timing}"
        " --predictions {output.predictions} --log-file {log}"


rule train_pair:
    input:
        raw="data/raw/lcqmc",
        pretrained=lambda w: checkpoint_input(
            (config["pair"].get("per_backbone") or {})
            .get(w.backbone, {})
            .get("pretrained", config["pair"].get("pretrained")),
            w.backbone,
        ),
        script="workflow/scripts/train_pair.py",
        code=code_deps("workflow/scripts/train_pair.py"),
    output:
        model=directory("models/lcqmc/{backbone}"),
        timing="metrics/lcqmc/{backbone}_train_timing.json",
    log:
        "logs/train_pair/{backbone}.log",
    wildcard_constraints:
        backbone="albert|bert",
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["pair"]["threads"]
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        tracked=tracked("seed", "pair"),
    shell:
        "workflow/python {input.script} --params params.yaml --backbone {wildcards.backbone}"
        " --train {input.raw}/dev.txt --out {output.model} --timing {output.timing} --log-file {log}"


rule evaluate_pair:
    input:
        raw="data/raw/lcqmc",
        model="models/lcqmc/{backbone}",
        train_timing="metrics/lcqmc/{backbone}_train_timing.json",
        script="workflow/scripts/evaluate_pair.py",
        code=code_deps("workflow/scripts/evaluate_pair.py"),
    output:
        metrics="metrics/lcqmc/{backbone}.json",
        timing="metrics/lcqmc/{backbone}_timing.json",
    log:
        "logs/evaluate_pair/{backbone}.log",
    wildcard_constraints:
        backbone="albert|bert",
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        tracked=tracked("pair.max_eval_pairs"),
    shell:
        "workflow/python {input.script} --params params.yaml --model {input.model} --eval {input.raw}/test.txt"
        " --metrics {output.metrics} --train-timing {input.train_timing} --timing {output.timing} --log-file {log}"
