"""Where everything lives: the one map of tasks, model lists and paths that the workflow rules, the
report, the service and the command line all read. Torch-free, so the workflow loads it cheaply.

The classification task is named after its data: a registry variant's dataset (`thucnews10`) or,
with `data.path`, the user's own directory (`data.name`, else the directory's name). Everything it
produces lives under data/{raw,processed}/<task>/, models/<task>/ and metrics/<task>/.
"""
from __future__ import annotations

from pathlib import Path

BACKBONES: tuple[str, ...] = (
    "bert", "albert", "t5", "xlnet", "electra", "roberta", "macbert", "ernie", "mengzi", "nezha",
)
GRANULARITIES: tuple[str, ...] = ("char", "word")
# The write-ups' classification data: their reference numbers are shown only beside runs on it.
WRITEUP_DATASET = "thucnews10"


def own_data(params: dict) -> dict | None:
    """The `data:` settings when they point at the user's own directory, else None."""
    data = params.get("data") or {}
    return data if data.get("path") else None


def task(params: dict) -> str:
    """The classification task's name, from the data."""
    own = own_data(params)
    if own is not None:
        from zhbench.data.own_files import task_name

        return task_name(own.get("name"), own["path"])
    from zhbench.data.registry import get_variant

    return get_variant(params["data"]["variant"]).dataset


def on_writeup_data(params: dict) -> bool:
    """Whether the classification data is the write-ups' (so their numbers can stand beside ours)."""
    return own_data(params) is None and task(params) == WRITEUP_DATASET


def metrics_dir(task_name: str) -> str:
    return f"metrics/{task_name}"


def own_data_files(params: dict) -> list[str]:
    """The files of the user's data directory (train/dev/test/class.txt), as stage inputs: changing
    one reruns everything that depends on it."""
    own = own_data(params)
    if own is None:
        return []
    directory = Path(own["path"]).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(f"data.path {own['path']!r}: no such directory")
    return sorted(str(p) for p in directory.iterdir()
                  if p.is_file() and (p.stem in ("train", "dev", "test") or p.name == "class.txt"))


def configured_task(params_file: str | Path = "params.yaml") -> str:
    """The task of the project in the working directory (its params.yaml); the write-ups' without one."""
    if not Path(params_file).is_file():
        return WRITEUP_DATASET
    from zhbench.params import load

    return task(load(params_file))


PRETRAINED_HERE = "pretrained-char"  # the backbones fine-tuned from the pretrain stage's checkpoints
HERE = "here"  # a `pretrained:` value: the pretrain stage's checkpoint of that family


def pretrained_dir(task_name: str, family: str) -> str:
    """Where the pretrain stage writes a family's checkpoint (hub layout)."""
    return f"models/{task_name}/pretrained/{family}"


def pretrained_source(value: str | None, family: str, params: dict) -> str | None:
    """A `pretrained:` setting as a checkpoint source. `here` is the pretrain stage's checkpoint of
    `family` (NER and LCQMC fine-tune from the task's pre-trained bert/albert) while that family
    is pre-trained, and from scratch (None) once `pretrain.families` leaves it out: that list is
    the one switch that turns pre-training off."""
    if value != HERE:
        return value
    return pretrained_dir(task(params), family) if family in pretrain_families(params) else None


def pretrain_families(params: dict) -> list[str]:
    return list((params.get("pretrain") or {}).get("families") or [])


def backbone_runs(params: dict) -> dict[str, list[str]]:
    """{setting: backbones}: each granularity's from-scratch (or hub-checkpoint) backbones, and the
    families fine-tuned from their own pre-training, under models/<task>/backbones/<setting>/."""
    runs = {g: list(names) for g, names in params["backbones"]["granularities"].items()}
    families = pretrain_families(params)
    if families:
        runs[PRETRAINED_HERE] = families
    return runs


def served_models(params: dict) -> list[str]:
    """Every classifier the pipeline trains that `zhbench serve` can load, named as `--model` takes
    them (the Random Forest is a pickle: not served). The latency stage times exactly these."""
    models = [m for m in params["baselines"]["models"] if params["baselines"][m].get("type") != "random_forest"]
    models += [f"{g}/{b}" for g, names in backbone_runs(params).items() for b in names]
    models += [f"quantized/char/{b}_{v}" for b in params["quantize"]["backbones"] for v in ("int8", "onnx")]
    models += [f"students/char/textcnn_{t}" for t in params["distill"]["teachers"]]
    return models + ["ensemble"]


def model_subpath(model: str) -> str:
    """Where a served model name lives under models/<task>/ (`char/bert` is a backbone)."""
    first = model.split("/", 1)[0]
    return f"backbones/{model}" if first in (*GRANULARITIES, PRETRAINED_HERE) else model


def model_path(task_name: str, model: str) -> str:
    """models/<task>/... of a served model name."""
    return f"models/{task_name}/{model_subpath(model)}"


def teacher_path(task_name: str, teacher: str, params: dict) -> str:
    """A distillation teacher's dir: the ensemble, a baseline by name, a backbone as <g>/<name>, or
    (the write-ups' BERT -> TextCNN) a bare backbone name at char granularity."""
    if teacher != "ensemble" and "/" not in teacher and teacher not in params["baselines"]["models"]:
        teacher = f"char/{teacher}"
    return model_path(task_name, teacher)


def unknown_model_references(params: dict) -> list[str]:
    """The settings that name a model no stage trains (an ensemble member, a distillation teacher, a
    backbone to quantize or to FastBERT), each as `section: name`, so that a profile or an own-data
    edit fails before the DAG is built, not halfway through the run."""
    trained = [m for m in served_models(params) if not m.startswith(("quantized/", "students/"))]
    paths = {model_path("", m) for m in trained}
    char = backbone_runs(params).get("char", [])
    wrong = [f"ensemble.members: {m}" for m in params["ensemble"]["members"] if m not in trained or m == "ensemble"]
    wrong += [f"distill.teachers: {t}" for t in params["distill"]["teachers"] if teacher_path("", t, params) not in paths]
    wrong += [f"{s}.backbones: {b}" for s in ("quantize", "fastbert") for b in params[s]["backbones"] if b not in char]
    return wrong


def test_accuracy(metrics_root: Path, task_name: str, model: str) -> float | None:
    """A served model's test accuracy from its evaluation's metrics file."""
    import json

    base = Path(metrics_root) / task_name
    if model.startswith("quantized/"):  # metrics/<task>/quantize/char/<b>.json holds both int8 forms
        _, granularity, leaf = model.split("/")
        backbone, form = leaf.rsplit("_", 1)
        path, key = base / "quantize" / granularity / f"{backbone}.json", {"int8": "torch_int8", "onnx": "ort_int8"}[form]
        return json.loads(path.read_text(encoding="utf-8"))["trained"]["test_accuracy"][key] if path.is_file() else None
    rel = f"backbones/{model}" if model.split("/", 1)[0] in (*GRANULARITIES, PRETRAINED_HERE) else model
    path = base / f"{rel}.json"
    return json.loads(path.read_text(encoding="utf-8"))["test"]["accuracy"] if path.is_file() else None
