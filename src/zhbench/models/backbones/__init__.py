"""Ten transformer backbones behind one classification head.

Every backbone is the real transformers class (BertModel, AlbertModel, T5EncoderModel, XLNetModel,
ElectraModel, ErnieModel) or our NezhaModel (transformers 5 dropped NeZha). Two sizes:

- ``base``: the write-ups' paper configs (768 hidden, 12 layers, 12 heads, 3072 FFN), each with its
  family's own structure, and the hub checkpoints they were pre-trained as (PRETRAINED_CHECKPOINTS).
- ``mini``: the same families scaled down to train from scratch on a laptop CPU, over the project's
  own vocabulary. The family traits are kept, only the shape shrinks.

roberta / macbert / mengzi are BERT-architecture checkpoints (chinese-roberta-wwm-ext,
chinese-macbert-base, mengzi-bert-base all ship `model_type: bert`): they are BertModel, and what
tells them apart is only their pre-trained weights. At ``mini`` size, trained from scratch, they are
therefore the same network as ``bert`` (same seed -> same numbers).

The package by concern:

- `families`: the family table (FAMILIES: classes, sentence vector, inputs, position table, config
  structure) and the configs built from it (build_config).
- `hub`: a backbone from a config or a pretrained checkpoint (build_backbone, load_pretrained).
- `classifier`: the one classification head every backbone shares (SequenceClassifier).
- `checkpoint`: saving and loading a fine-tuned classifier (save_classifier, load_classifier).

Callers import from this package; the names below are its interface.
"""
from __future__ import annotations

from zhbench.models.backbones.checkpoint import (
    HEAD_FILE,
    META_FILE,
    load_classifier,
    save_classifier,
    write_classifier,
)
from zhbench.models.backbones.classifier import (
    ClassificationHead,
    LogitsOnly,
    SequenceClassifier,
    count_parameters,
    logits_of,
)
from zhbench.models.backbones.families import (
    BACKBONES,
    FAMILIES,
    MINI_POSITIONS,
    SHAPE_KEYS,
    SIZES,
    Family,
    Shape,
    Size,
    build_config,
    family_of,
)
from zhbench.models.backbones.hub import (
    PRETRAINED_CHECKPOINTS,
    WEIGHT_FILES,
    PretrainedUnavailableError,
    build_backbone,
    download_hint,
    load_pretrained,
    looks_like_hub_id,
)

__all__ = [
    "BACKBONES", "FAMILIES", "HEAD_FILE", "META_FILE", "MINI_POSITIONS", "PRETRAINED_CHECKPOINTS",
    "SHAPE_KEYS", "SIZES", "WEIGHT_FILES", "ClassificationHead", "Family", "LogitsOnly",
    "PretrainedUnavailableError", "SequenceClassifier", "Shape", "Size", "build_backbone", "build_config",
    "count_parameters", "download_hint", "family_of", "load_classifier", "load_pretrained", "logits_of",
    "looks_like_hub_id", "save_classifier", "write_classifier",
]
