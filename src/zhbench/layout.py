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


def raw_dir(task_name: str) -> str:
    return f"data/raw/{task_name}"


def processed_dir(task_name: str) -> str:
    return f"data/processed/{task_name}"


def models_dir(task_name: str) -> str:
    return f"models/{task_name}"


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
