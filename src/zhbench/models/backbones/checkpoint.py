"""Saving and loading a fine-tuned classifier (safetensors only)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zhbench.io import BadInputError, atomic_dir, read_json, write_json
from zhbench.models.backbones.classifier import SequenceClassifier
from zhbench.models.backbones.families import family_of

HEAD_FILE = "head.safetensors"
META_FILE = "zhbench.json"


def save_classifier(model: SequenceClassifier, out_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
    """Write `out_dir` atomically (see write_classifier)."""
    with atomic_dir(out_dir) as tmp:
        write_classifier(model, tmp, extra)


def write_classifier(model: SequenceClassifier, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
    """Into an existing `directory`: backbone (config.json + model.safetensors, loadable with
    AutoModel.from_pretrained), head.safetensors, and zhbench.json (family, num_labels, dropout,
    extra: labels, granularity, max_len ...). `extra` must be JSON-serialisable."""
    from safetensors.torch import save_file

    directory = Path(directory)
    model.backbone.save_pretrained(directory)
    head = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
    save_file(head, str(directory / HEAD_FILE), metadata={"format": "pt"})
    write_json(directory / META_FILE, {
        "family": model.family,
        "num_labels": model.num_labels,
        "dropout": model.dropout_p,
        "extra": extra or {},
    })


def load_classifier(model_dir: str | os.PathLike) -> tuple[SequenceClassifier, dict[str, Any]]:
    """Inverse of save_classifier: (model in eval mode, extra). Reads safetensors only."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    for f in (META_FILE, HEAD_FILE, "config.json", "model.safetensors"):
        if not (model_dir / f).is_file():
            raise BadInputError(model_dir / f, None, "expected a file written by save_classifier; it is missing")
    meta = read_json(model_dir / META_FILE)
    fam = family_of(meta["family"])
    backbone = fam.model_class.from_pretrained(str(model_dir), local_files_only=True, use_safetensors=True)
    model = SequenceClassifier(backbone, meta["family"], int(meta["num_labels"]), float(meta["dropout"]))
    model.head.load_state_dict(load_file(str(model_dir / HEAD_FILE)), strict=True)
    return model.eval(), meta.get("extra", {})
