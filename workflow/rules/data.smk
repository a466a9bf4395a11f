# download -> preprocess for the news-title task.


rule download:
    input:
        script="workflow/scripts/download.py",
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
        tracked=tracked("data.variant"),
    shell:
        "workflow/python {input.script} --params params.yaml --variant-key data.variant"
        " --out {output} --log-file {log}"


rule preprocess:
    input:
        raw=f"data/raw/{TASK}",
        script="workflow/scripts/preprocess.py",
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
        tracked=tracked("data.max_rows", "preprocess"),
    shell:
        "workflow/python {input.script} --params params.yaml --raw {input.raw} --out {output.data}"
        " --stats {output.stats} --stopwords {input.stopwords} --log-file {log}"
