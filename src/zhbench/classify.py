"""Title classification with a transformer backbone: its settings, dev evaluation and prediction.

The training itself is `zhbench.fit.fit`; what this task adds is its data (`features.Features`),
its model (`backbones.SequenceClassifier`, whose forward with `labels` returns the loss) and how
dev is scored. A stage resolves settings with `backbone_settings` from params.yaml's `backbones:`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from zhbench.devices import resolve_precision
from zhbench.features import Features, sequential_batches
from zhbench.fit import Evaluation, FitSettings, autocast, dist_info, sum_over_ranks, to_device

MODEL_KEYS = ("size", "pretrained", "overrides", "dropout", "train")
GRANULARITY_KEYS = ("char", "word")


@torch.no_grad()
def predict(model: nn.Module, features: Features, batch_size: int = 128, dynamic_padding: bool = False,
            precision: str = "fp32") -> tuple[torch.Tensor, float]:
    """Logits for every row in file order (float32 [N, C], on the CPU), and the mean cross-entropy
    over all rows. Batches are in file order, so the result does not depend on any sampler state."""
    logits, loss_sum = _predict_sum(model, features, batch_size, dynamic_padding, precision)
    return logits, loss_sum / len(features)


def _predict_sum(model, features, batch_size, dynamic_padding, precision="fp32"):
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    precision = resolve_precision(precision, device)
    chunks, loss_sum = [], 0.0
    # no_grad: kept logits would otherwise hold every batch's autograd graph until the end (a 10k-row
    # dev pass of a mini T5 grew to 17 GB and was OOM-killed); the values are the same either way.
    with torch.no_grad():
        for idx in sequential_batches(len(features), batch_size):
            batch = to_device(features.batch(idx, dynamic_padding), device)
            labels = batch.pop("labels")
            with autocast(device, precision):
                logits = model(**batch).logits
            loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum").item()
            chunks.append(logits.float().cpu())
    model.train(was_training)
    return torch.cat(chunks), loss_sum


def dev_evaluator(dev: Features, s: FitSettings):
    """fit's `evaluate`: dev loss and accuracy. Distributed, each rank scores rows rank::world and
    the sums are added up, so every rank gets the same numbers."""
    def evaluate(model: nn.Module) -> Evaluation:
        rank, world = dist_info()
        shard = dev if world == 1 else dev.subset(range(rank, len(dev), world))
        bs = s.eval_batch_size or 2 * s.batch_size
        logits, loss_sum = _predict_sum(model, shard, bs, s.dynamic_padding, s.precision)
        correct = (logits.argmax(dim=1) == shard.labels).sum().item()
        loss_sum, correct, count = sum_over_ranks(loss_sum, correct, len(shard), device=next(model.parameters()).device)
        return Evaluation(loss_sum / count, correct / count, math.ceil(len(shard) / bs))

    return evaluate


@dataclass
class BackboneSettings:
    """One backbone's resolved settings at one granularity."""

    size: str
    pretrained: str | None
    overrides: dict
    dropout: float
    max_len: int
    train: FitSettings


def backbone_settings(section: dict, backbone: str, granularity: str, seed: int) -> BackboneSettings:
    """Resolve params.yaml `backbones:` for one (backbone, granularity).

    Precedence, lowest first: the shared defaults (`size`, `dropout`, `train`), then
    `backbones.<name>` (size, pretrained, overrides, dropout, train: {...}), then
    `backbones.<name>.<granularity>` with the same keys (e.g. `word: {pretrained: junnyu/wobert_chinese_plus_base}`).
    `seed` is the project-wide random seed."""
    allowed = section.get("granularities", {}).get(granularity)
    if allowed is None:
        raise KeyError(f"params: backbones.granularities has no {granularity!r} list")
    if backbone not in allowed:
        raise ValueError(f"backbone {backbone!r} is not listed in backbones.granularities.{granularity}: {allowed}")
    own = dict(section.get(backbone) or {})
    unknown = set(own) - set(MODEL_KEYS) - set(GRANULARITY_KEYS)
    if unknown:
        raise ValueError(f"params: backbones.{backbone} has unknown keys {sorted(unknown)}; "
                         f"expected some of {list(MODEL_KEYS + GRANULARITY_KEYS)}")
    per_granularity = dict(own.pop(granularity, None) or {})
    for g in GRANULARITY_KEYS:
        own.pop(g, None)
    unknown = set(per_granularity) - set(MODEL_KEYS)
    if unknown:
        raise ValueError(f"params: backbones.{backbone}.{granularity} has unknown keys {sorted(unknown)}")
    merged = {**own, **per_granularity}
    train = {**section["train"], **(own.get("train") or {}), **(per_granularity.get("train") or {}), "seed": seed}
    max_len = int(train.pop("max_len"))
    where = f"params backbones.{backbone} ({granularity}) train"
    return BackboneSettings(
        size=merged.get("size", section.get("size", "mini")),
        pretrained=merged.get("pretrained", section.get("pretrained")),
        overrides=dict(merged.get("overrides") or {}),
        dropout=float(merged.get("dropout", section.get("dropout", 0.1))),
        max_len=max_len,
        train=FitSettings.from_dict(train, where),
    )
