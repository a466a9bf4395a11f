# Shared helpers for the rule files. The dotted params keys each rule tracks are the same keys its
# dvc.yaml stage lists under `params:`; their values become the rule's params, so Snakemake reruns
# the rule when they change (the default `params` rerun trigger).

TASK = "thucnews10"  # the news-title classification task; its dataset variant is config["data"]["variant"]


def lookup(dotted):
    node = config
    for key in dotted.split("."):
        node = node[key]
    return node


def tracked(*keys):
    """Params input function: {dotted key: value} for keys that may hold {wildcards}."""

    def resolve(wildcards):
        return {k: lookup(k.format(**wildcards)) for k in (key.format(**wildcards) for key in keys)}

    return resolve
