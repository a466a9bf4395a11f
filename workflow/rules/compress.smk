# Compression of a trained char-level backbone: int8 quantization (torch and ONNX Runtime),
# BERT -> TextCNN knowledge distillation through a distill TSV, FastBERT early exit.

TEACHERS = f"models/{TASK}/backbones/char"


rule quantize:
    input:
        data=f"data/processed/{TASK}",
        model=f"{TEACHERS}/{{backbone}}",
        script="workflow/scripts/quantize.py",
        code=code_deps("workflow/scripts/quantize.py"),
    output:
        torch=directory(f"models/{TASK}/quantized/char/{{backbone}}_int8"),
        onnx=directory(f"models/{TASK}/quantized/char/{{backbone}}_onnx"),
        metrics=f"metrics/{TASK}/quantize/char/{{backbone}}.json",
        timing=f"metrics/{TASK}/quantize/char/{{backbone}}_timing.json",
    log:
        "logs/quantize/char_{backbone}.log",
    wildcard_constraints:
        backbone="|".join(BACKBONES),
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["quantize"]["threads"]
    resources:
        cpu_share=LATENCY_TIMING,
        mem_mb=4000,
        runtime=60,
    params:
        tracked=tracked("seed", "quantize"),
    shell:
        "workflow/python {input.script} --params params.yaml --model {input.model} --data {input.data} --granularity char"
        " --out-torch {output.torch} --out-onnx {output.onnx} --metrics {output.metrics}"
        " --timing {output.timing} --log-file {log}"


rule distill_tsv:
    input:
        data=f"data/processed/{TASK}",
        teacher=lambda w: layout.teacher_path(TASK, w.teacher, config),
        stopwords="config/stopwords.txt",
        script="workflow/scripts/distill_tsv.py",
        code=code_deps("workflow/scripts/distill_tsv.py"),
    output:
        tsv=directory(f"data/processed/distill/{TASK}/char/{{teacher}}"),
        summary=f"metrics/{TASK}/distill/char_tsv_{{teacher}}.json",
    log:
        "logs/distill_tsv/char_{teacher}.log",
    wildcard_constraints:
        teacher="|".join(config["distill"]["teachers"]),
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["distill"]["threads"]
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        tracked=tracked(
            "seed",
            "distill.threads",
            "distill.teacher_batch_size",
            "distill.transfer",
            "preprocess.remove_stopwords",
        ),
    shell:
        "workflow/python {input.script} --params params.yaml --teacher {input.teacher} --data {input.data}"
        " --granularity char --out {output.tsv} --summary {output.summary} --stopwords {input.stopwords}"
        " --log-file {log}"


rule train_student:
    input:
        data=f"data/processed/{TASK}",
        distill=f"data/processed/distill/{TASK}/char/{{teacher}}",
        teacher=lambda w: layout.teacher_path(TASK, w.teacher, config),
        vocab=f"models/{TASK}/vocab/char",
        script="workflow/scripts/train_student.py",
        code=code_deps("workflow/scripts/train_student.py"),
    output:
        model=directory(f"models/{TASK}/students/char/textcnn_{{teacher}}"),
        metrics=f"metrics/{TASK}/students/char/textcnn_{{teacher}}.json",
        confusion=f"metrics/{TASK}/students/char/textcnn_{{teacher}}_confusion.csv",
        figure="reports/figures/confusion_char_textcnn_{teacher}.png",
        timing=f"metrics/{TASK}/students/char/textcnn_{{teacher}}_timing.json",
    log:
        "logs/train_student/char_textcnn_{teacher}.log",
    wildcard_constraints:
        teacher="|".join(config["distill"]["teachers"]),
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["distill"]["train"]["threads"]
    resources:
        cpu_share=LATENCY_TIMING,
        mem_mb=4000,
        runtime=120,
    params:
        tracked=tracked(
            "seed",
            "distill.alpha",
            "distill.temperature",
            "distill.student",
            "distill.train",
            "distill.timing_rows",
        ),
    shell:
        "workflow/python {input.script} --params params.yaml --teacher {input.teacher} --distill {input.distill}"
        " --data {input.data} --vocab {input.vocab} --granularity char --out {output.model} --metrics {output.metrics}"
        " --confusion-csv {output.confusion} --confusion-png {output.figure} --timing {output.timing} --log-file {log}"


rule fastbert:
    input:
        data=f"data/processed/{TASK}",
        teacher=f"{TEACHERS}/{{backbone}}",
        script="workflow/scripts/fastbert.py",
        code=code_deps("workflow/scripts/fastbert.py"),
    output:
        model=directory(f"models/{TASK}/fastbert/char/{{backbone}}"),
        metrics=f"metrics/{TASK}/fastbert/char/{{backbone}}.json",
        timing=f"metrics/{TASK}/fastbert/char/{{backbone}}_timing.json",
    log:
        "logs/fastbert/char_{backbone}.log",
    wildcard_constraints:
        backbone="|".join(BACKBONES),
    conda:
        "../envs/zhbench.yaml"
    threads: lambda w: config["fastbert"]["train"]["threads"]
    resources:
        cpu_share=LATENCY_TIMING,
        mem_mb=3000,
        runtime=60,
    params:
        tracked=tracked("seed", "fastbert"),
    shell:
        "workflow/python {input.script} --params params.yaml --teacher {input.teacher} --data {input.data}"
        " --granularity char --out {output.model} --metrics {output.metrics} --timing {output.timing} --log-file {log}"
