# Shared helpers for the rule files. The dotted params keys each rule tracks are the keys its
# generated dvc.yaml stage lists under `params:`; their values become the rule's params, so
# Snakemake reruns the rule when they change (the default `params` rerun trigger). A rule's `code`
# input is every zhbench module its script imports (zhbench.workflow.imports.code_deps).
from zhbench import layout
from zhbench.params import backbone_option, local_checkpoint
from zhbench.workflow.imports import code_deps

# Stages that time inference hold the whole of `cpu_share` (the default profile grants 100 per run,
# every other job takes 1), so nothing else runs beside them while they measure: a latency taken
# while another job shares the cores measures the neighbour. DVC runs one stage at a time anyway.
LATENCY_TIMING = 100

TASK = layout.task(
    config
)  # the classification task, named after its data (zhbench.layout)


def lookup(dotted):
    node = config
    for key in dotted.split("."):
        node = node[key]
    return node


def tracked(*keys):
    """Params input function: {dotted key: value} for keys that may hold {wildcards}."""

    def resolve(wildcards):
        return {
            k: lookup(k.format(**wildcards))
            for k in (key.format(**wildcards) for key in keys)
        }

    return resolve


def checkpoint_input(source, family=None):
    """The pretrained checkpoint a stage starts from, as an input when it is a file: a directory
    of this project (models/..., made by a stage; `here`: the pretrain stage's checkpoint of
    `family`) or any local directory; a hub id is none.
    """
    source = layout.pretrained_source(source, family, config)
    if source and str(source).startswith("models/"):
        return [source]
    local = local_checkpoint(source)
    return [local] if local else []


def backbone_checkpoint(wildcards):
    return checkpoint_input(
        backbone_option(
            config["backbones"], wildcards.backbone, wildcards.granularity, "pretrained"
        )
    )


def report_inputs(wildcards):
    """Every metrics file a report table reads (quality and timing), plus the report's own code."""
    baselines = config["baselines"]["models"]
    return {
        "stats": f"metrics/{TASK}/dataset_stats.json",
        "baselines": expand(
            f"metrics/{TASK}/{{m}}{{s}}.json", m=baselines, s=["", "_timing"]
        ),
        "backbones": [
            f"metrics/{TASK}/backbones/{g}/{b}{s}.json"
            for g, names in layout.backbone_runs(config).items()
            for b in names
            for s in ("", "_timing", "_train_timing")
        ],
        "cache": expand(
            f"metrics/{TASK}/cache/{{b}}{{s}}.json",
            b=config["cache_timing"]["backbones"],
            s=["", "_timing"],
        ),
        "quantize": expand(
            f"metrics/{TASK}/quantize/char/{{b}}{{s}}.json",
            b=config["quantize"]["backbones"],
            s=["", "_timing"],
        ),
        "distill": [
            f"metrics/{TASK}/{f}_{t}{s}.json"
            for t in config["distill"]["teachers"]
            for f, s in (
                ("distill/char_tsv", ""),
                ("students/char/textcnn", ""),
                ("students/char/textcnn", "_timing"),
            )
        ],
        "pretrain": expand(
            f"metrics/{TASK}/pretrain/{{b}}{{s}}.json",
            b=(config.get("pretrain") or {}).get("families") or [],
            s=["", "_timing"],
        ),
        "ensemble": [
            f"metrics/{TASK}/ensemble.json",
            f"metrics/{TASK}/ensemble_timing.json",
            f"metrics/{TASK}/latency_timing.json",
        ],
        "fastbert": expand(
            f"metrics/{TASK}/fastbert/char/{{b}}{{s}}.json",
            b=config["fastbert"]["backbones"],
            s=["", "_timing"],
        ),
        "ner": expand(
            "metrics/ner/{v}{s}.json", v=config["ner"]["variants"], s=["", "_timing"]
        ),
        "pair": expand(
            "metrics/lcqmc/{b}{s}.json",
            b=config["pair"]["backbones"],
            s=["", "_timing"],
        ),
        "curves": [
            f"metrics/{TASK}/curves/{g}/{b}"
            for g, names in layout.backbone_runs(config).items()
            for b in names
        ],
        "figures": [f"reports/figures/confusion_{m}.png" for m in baselines]
        + [
            f"reports/figures/confusion_{g}_{b}.png"
            for g, names in layout.backbone_runs(config).items()
            for b in names
        ]
        + [
            f"reports/figures/confusion_char_textcnn_{t}.png"
            for t in config["distill"]["teachers"]
        ]
        + ["reports/figures/confusion_ensemble.png"],
        "references": "config/references.yaml",
        "script": "workflow/scripts/report.py",
        "code": code_deps("workflow/scripts/report.py"),
    }


def report_figures():
    """PNGs the report stage draws itself (the evaluate stages draw the confusion matrices)."""
    curves = [
        f"reports/figures/curves_{g}_{b}.png"
        for g, names in layout.backbone_runs(config).items()
        for b in names
    ]
    fastbert = [
        f"reports/figures/fastbert_speed_{b}.png"
        for b in config["fastbert"]["backbones"]
    ]
    return curves + ["reports/figures/accuracy_vs_latency.png"] + fastbert
