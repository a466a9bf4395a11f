"""Trained classifiers behind one interface, for offline prediction and the prediction service.

A `Predictor` (zhbench.predictors) takes token strings (what `zhbench.text.segment` gives, joined
by spaces: exactly the lines of the processed splits the model was trained on) and returns class
probabilities, one column per label id. `predictors.TextClassifier` puts the segmentation in front,
so the HTTP service and an offline script that call it see the same tokens for the same title.

Each model kind has one loader, chosen from the model dir's own metadata (`detect_kind`):

- ``fasttext``: a dir written by the train_baseline stage (model.json with ``type: fasttext`` and
  the sha256 of model.bin). fastText's own binary format.
- ``backbone``: a dir written by `backbones.save_classifier` (zhbench.json, config.json,
  model.safetensors, head.safetensors) with the tokenizer.json it was trained with.
- ``ensemble``: weighted members (ensemble.json names them), each loaded here by its own kind.

Only formats that hold data, never code, are read: fastText .bin, safetensors, JSON. The Random
Forest baseline is a pickle and is refused here (unpickling can run arbitrary code; its sha256
sits in a model.json next to it, so whoever can swap the pickle can swap the checksum too).

Adding a kind is one loader function `(model_dir, labels) -> (Predictor, details)`: registered with
`@register("kind")` here, or, when it lives beside its model code, one line in LAZY_LOADERS (the
int8 backbones and ONNX models of zhbench.quantize, the TextCNN student of zhbench.models.textcnn;
their dirs name their kind in zhbench.json). A new metadata file needs one line in `detect_kind`.
Loaders build on zhbench.predictors, never on this module, so no import runs in a circle.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from zhbench.predictors import BackbonePredictor, ModelLoadError, Predictor
from zhbench.text import GRANULARITIES


@dataclass
class ModelInfo:
    """Where a predictor came from, for /health and logs."""

    kind: str
    model_dir: str
    name: str
    details: dict[str, Any] = field(default_factory=dict)


Loader = Callable[[Path, "list[str] | None"], tuple[Predictor, dict[str, Any]]]
LOADERS: dict[str, Loader] = {}


# Kinds whose loader lives beside its model code, imported on first use (that code imports torch,
# onnxruntime, ...; a fastText service never needs them).
LAZY_LOADERS: dict[str, tuple[str, str]] = {
    "backbone_int8": ("zhbench.quantize", "load_int8_predictor"),  # torch dynamic int8 (torch.load weights_only)
    "onnx_int8": ("zhbench.quantize", "load_onnx_predictor"),      # ONNX Runtime int8
    "textcnn": ("zhbench.models.textcnn", "load_predictor"),       # distilled TextCNN student (safetensors)
    "linear_ngram": ("zhbench.models.linear_ngram", "load_predictor"),  # TF-IDF n-gram SVM (JSON + safetensors)
}


def loader_for(kind: str) -> Loader | None:
    if kind not in LOADERS and kind in LAZY_LOADERS:
        import importlib

        module, name = LAZY_LOADERS[kind]
        LOADERS[kind] = getattr(importlib.import_module(module), name)
    return LOADERS.get(kind)


def register(kind: str) -> Callable[[Loader], Loader]:
    def add(fn: Loader) -> Loader:
        LOADERS[kind] = fn
        return fn

    return add


# --------------------------------------------------------------------------------------------------
# Kind detection and the one entry point


def detect_kind(model_dir: Path) -> str:
    """The model kind, from the metadata file the training stage wrote into the dir."""
    if (model_dir / "zhbench.json").is_file():
        meta = _read_json(model_dir / "zhbench.json")
        if "num_tags" in meta:  # save_tagger's record: a BERT+CRF entity tagger (zhbench.ner_predict)
            return "ner"
        return str(meta.get("kind", "backbone"))  # save_classifier writes no kind: a plain backbone
    if (model_dir / "model.json").is_file():
        meta = _read_json(model_dir / "model.json")
        kind = meta.get("type")
        if kind == "random_forest":
            raise ModelLoadError(
                f"{model_dir}: a Random Forest is stored as a pickle, which can run code when loaded; "
                "the prediction service only reads safe formats (fastText .bin, safetensors, ONNX)"
            )
        if not isinstance(kind, str):
            raise ModelLoadError(f"{model_dir / 'model.json'}: expected a 'type' field naming the model kind, found {kind!r}")
        return kind
    present = sorted(p.name for p in model_dir.iterdir())[:10]
    raise ModelLoadError(
        f"{model_dir}: no model metadata (expected model.json from train_baseline or zhbench.json from "
        f"save_classifier); the dir holds {present or 'nothing'}"
    )


def load_predictor(model_dir: str | os.PathLike, labels: Sequence[str] | None = None) -> tuple[Predictor, ModelInfo]:
    """Load the model in `model_dir` with its kind's loader.

    labels: the label names (data/processed/<task>/labels.txt) for kinds whose dir does not hold
    them (fastText). Every failure is a ModelLoadError that names the dir and what is wrong.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir}: model dir not found (train the model first, or check --model / --model-dir)")
    kind = detect_kind(model_dir)
    if kind == "ner":
        raise ModelLoadError(f"{model_dir}: an NER tagger, which finds entities rather than a label "
                             "(zhbench.ner_predict.EntityTagger loads it)")
    try:
        loader = loader_for(kind)
    except (ImportError, AttributeError) as err:
        raise ModelLoadError(f"{model_dir}: the loader of kind {kind!r} cannot be imported: {err}") from err
    if loader is None:
        raise ModelLoadError(f"{model_dir}: unknown model kind {kind!r}; this zhbench serves {sorted({*LOADERS, *LAZY_LOADERS})}")
    try:
        predictor, details = loader(model_dir, list(labels) if labels is not None else None)
    except ModelLoadError:
        raise
    except Exception as err:  # corrupt files surface as many exception types; name them all the same way
        raise ModelLoadError(f"{model_dir}: cannot load the {kind} model: {type(err).__name__}: {err}") from err
    if predictor.granularity not in GRANULARITIES:
        raise ModelLoadError(f"{model_dir}: granularity {predictor.granularity!r}, expected one of {GRANULARITIES}")
    if not predictor.labels:
        raise ModelLoadError(f"{model_dir}: no label names (give the dataset's labels.txt)")
    return predictor, ModelInfo(kind=kind, model_dir=str(model_dir), name=details.pop("name", model_dir.name), details=details)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: expected a JSON object, cannot read it ({err})") from err
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


# --------------------------------------------------------------------------------------------------
# fastText


class FastTextPredictor:
    def __init__(self, model, labels: list[str], granularity: str):
        self._model = model
        self.labels = labels
        self.granularity = granularity
        if int(model.classes.max()) >= len(labels):
            raise ModelLoadError(f"the model predicts label id {int(model.classes.max())}, "
                                 f"but there are only {len(labels)} label names")

    def predict_proba(self, token_strings: list[str]) -> np.ndarray:
        out = np.zeros((len(token_strings), len(self.labels)), dtype=np.float64)
        if token_strings:
            out[:, self._model.classes] = self._model.predict_proba(token_strings)
        return out


@register("fasttext")
def _load_fasttext(model_dir: Path, labels: list[str] | None) -> tuple[Predictor, dict[str, Any]]:
    from zhbench.models import fasttext_model

    meta = _read_json(model_dir / "model.json")
    if labels is None:
        raise ModelLoadError(f"{model_dir}: a fastText model dir holds no label names; give the dataset's labels.txt")
    name = fasttext_model.MODEL_FILE
    sha256 = (meta.get("sha256") or {}).get(name)
    if sha256 is None:
        # fastText's loader ends the process without an error on a truncated file; only the checksum
        # that train_baseline records turns that into a message, so a dir without one is refused.
        raise ModelLoadError(f"{model_dir / 'model.json'}: no sha256 for {name}; expected the model.json train_baseline writes")
    model = fasttext_model.load(model_dir / name, sha256)
    predictor = FastTextPredictor(model, labels, str(meta.get("granularity")))
    return predictor, {"name": meta.get("model", model_dir.name), "type": "fasttext", "args": meta.get("args", {})}


# --------------------------------------------------------------------------------------------------
# Transformer backbones (save_classifier dirs)


@register("backbone")
def _load_backbone(model_dir: Path, labels: list[str] | None) -> tuple[Predictor, dict[str, Any]]:
    from zhbench.encoders import load_encoder
    from zhbench.models.backbones import load_classifier

    if not (model_dir / "tokenizer.json").is_file():
        raise ModelLoadError(f"{model_dir / 'tokenizer.json'}: missing; a served backbone needs the tokenizer it "
                             "was trained with")
    for weights in ("model.safetensors", "head.safetensors"):  # name the damaged file, not just the dir
        _check_safetensors(model_dir / weights)
    model, extra = load_classifier(model_dir)  # safetensors only (use_safetensors=True, safetensors.load_file)
    dir_labels = extra.get("labels")
    if dir_labels:
        if labels is not None and list(labels) != list(dir_labels):
            raise ModelLoadError(f"{model_dir}: its labels {dir_labels} differ from the given label names {labels}")
        labels = list(dir_labels)
    if labels is None:
        raise ModelLoadError(f"{model_dir}: zhbench.json extra holds no labels; give the dataset's labels.txt")
    if model.num_labels != len(labels):
        raise ModelLoadError(f"{model_dir}: the head has {model.num_labels} outputs, but there are {len(labels)} label names")
    for key in ("granularity", "max_len"):
        if key not in extra:
            raise ModelLoadError(f"{model_dir / 'zhbench.json'}: extra.{key} missing; expected what the training stage records")
    max_len = int(extra["max_len"])
    try:
        encoder = load_encoder(model_dir, extra)
    except Exception as err:  # tokenizers raises a bare Exception on a malformed file
        raise ModelLoadError(f"{model_dir / 'tokenizer.json'}: cannot read the tokenizer ({err})") from err
    embeddings = model.backbone.get_input_embeddings().num_embeddings
    if encoder.vocab_size > embeddings:
        raise ModelLoadError(f"{model_dir / 'tokenizer.json'}: {encoder.vocab_size} tokens, but the model embeds only "
                             f"{embeddings}; the tokenizer is not the one this model was trained with")
    predictor = BackbonePredictor(model, encoder, labels, str(extra["granularity"]), max_len)
    return predictor, {"name": extra.get("name") or _backbone_name(model_dir, extra), "type": "backbone",
                       "family": model.family, "max_len": max_len}


def _check_safetensors(path: Path) -> None:
    """Read the header and check that the data it describes is all there (a cut file fails here)."""
    from safetensors import safe_open

    if not path.is_file():
        raise ModelLoadError(f"{path}: missing; expected a file written by save_classifier")
    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except Exception as err:  # SafetensorError and friends
        raise ModelLoadError(f"{path}: expected a safetensors file, found a damaged or foreign one ({err})") from err


def _backbone_name(model_dir: Path, extra: dict[str, Any]) -> str:
    backbone = extra.get("backbone") or model_dir.name
    return f"{extra['granularity']}/{backbone}"


# --------------------------------------------------------------------------------------------------
# Ensembles (their members are model dirs of any kind)


@register("ensemble")
def _load_ensemble(model_dir: Path, labels: list[str] | None) -> tuple[Predictor, dict[str, Any]]:
    from zhbench.ensemble import load_ensemble_predictor

    return load_ensemble_predictor(model_dir, labels, lambda member, names: load_predictor(member, names)[0])
