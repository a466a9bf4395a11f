"""params.yaml: load it, read one stage's section, and apply a profile overlay.

A stage script reads only the section it declares as DVC `params:` (and Snakemake `params:`),
so changing one model's knobs reruns exactly that model's stages.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

PROFILES_DIR = Path("config")


def load(path: str | os.PathLike = "params.yaml") -> dict:
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f)
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level")
    return params


def section(params: dict, dotted: str) -> Any:
    """params['a']['b'] for 'a.b', with an error that says which key is missing."""
    node: Any = params
    seen = []
    for key in dotted.split("."):
        seen.append(key)
        if not isinstance(node, dict) or key not in node:
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "(not a mapping)"
            raise KeyError(f"params: no key {'.'.join(seen)!r}; known here: {known}")
        node = node[key]
    return node


def deep_merge(base: dict, overlay: dict) -> dict:
    """Overlay wins; mappings merge recursively; lists and scalars are replaced whole."""
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def profile_overlay(name: str, profiles_dir: str | os.PathLike = PROFILES_DIR, _seen: tuple[str, ...] = ()) -> dict:
    """config/<name>.yaml; one that says `extends: <other>` is merged over that profile first."""
    path = Path(profiles_dir) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(profiles_dir).glob("*.yaml"))
        raise FileNotFoundError(f"no profile {name!r} ({path} missing); known profiles: {', '.join(known)}")
    if name in _seen:
        raise ValueError(f"profile {name!r} extends itself through {' -> '.join(_seen)}")
    overlay = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    parent = overlay.pop("extends", None)
    if parent is not None:
        overlay = deep_merge(profile_overlay(parent, profiles_dir, (*_seen, name)), overlay)
    return overlay | {"profile": name}


def validate(params: dict, schema_path: str | os.PathLike = "workflow/schemas/params.schema.yaml") -> None:
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    jsonschema.validate(params, schema)


def backbone_option(section: dict, backbone: str, granularity: str, key: str, default: Any = None) -> Any:
    """One setting of `backbones:` for (backbone, granularity), by precedence: the granularity's
    own (`backbones.<name>.<granularity>.<key>`), the backbone's (`backbones.<name>.<key>`), the
    shared default (`backbones.<key>`). Torch-free: the workflow reads it to find its inputs."""
    own = section.get(backbone) or {}
    for scope in ((own.get(granularity) or {}), own, section):
        if key in scope:
            return scope[key]
    return default


def local_checkpoint(source: str | None) -> str | None:
    """`source` when it names a local checkpoint directory (then it is a stage input), else None
    (unset, or a hub id: the model hub is not a file the engines can hash)."""
    if source and Path(source).expanduser().is_dir():
        return str(source)
    return None
