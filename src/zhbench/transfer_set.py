"""The distillation transfer set: noisy copies of the training titles for the teacher to label.

A teacher scored on its own training rows is almost always right and almost always sure (the
ensemble's linear n-gram member fits them to 99.96 %), so its soft targets there say little more
than the gold label. Tang et al. 2019 ("Distilling Task-Specific Knowledge from BERT into Simple
Neural Networks") label *perturbed* inputs instead: each copy of a title masks every character with
probability `mask_prob` and, with probability `span_prob`, keeps only a random contiguous span of it.
The teacher is unsure on those, which is the knowledge the student lacks; the student learns them
from the teacher's logits alone (no gold term: a cut or masked title may no longer show its class).

Deterministic: one numpy Generator seeded from `seed`, drawn in file order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from zhbench.preprocess import TEXT_DIR, write_split
from zhbench.text import GRANULARITIES, segment

SPLIT = "transfer"
# Not a character of any vocabulary or n-gram table built from real titles, and not a control
# character: every reader maps it to its unknown token, which is what a mask is.
MASK = "\ufffd"


@dataclass(frozen=True)
class TransferConfig:
    copies: int = 0           # noisy copies per training title (0: no transfer set)
    mask_prob: float = 0.1    # Tang et al.: p_mask 0.1
    span_prob: float = 0.25   # Tang et al.: p_ng 0.25 (an n-gram of the example)
    min_span: int = 4         # shortest span kept, in characters

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "params distill.transfer") -> "TransferConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; expected {sorted(cls.__dataclass_fields__)}")
        cfg = cls(**d)
        if isinstance(cfg.copies, bool) or not isinstance(cfg.copies, int) or cfg.copies < 0:
            raise ValueError(f"{where}.copies must be an integer >= 0, got {cfg.copies!r}")
        for name in ("mask_prob", "span_prob"):
            value = getattr(cfg, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{where}.{name} must be a probability in [0, 1], got {value!r}")
        if isinstance(cfg.min_span, bool) or not isinstance(cfg.min_span, int) or cfg.min_span < 1:
            raise ValueError(f"{where}.min_span must be an integer >= 1, got {cfg.min_span!r}")
        return cfg


def perturb(title: str, rng: np.random.Generator, cfg: TransferConfig) -> str:
    """One noisy copy of a title: characters masked at random, then (sometimes) a random span kept."""
    chars = [MASK if c.strip() and rng.random() < cfg.mask_prob else c for c in title]
    if len(chars) > cfg.min_span and rng.random() < cfg.span_prob:
        length = int(rng.integers(cfg.min_span, len(chars) + 1))
        start = int(rng.integers(0, len(chars) - length + 1))
        chars = chars[start:start + length]
    return "".join(chars)


def transfer_titles(titles: Sequence[str], labels: Sequence[int], cfg: TransferConfig,
                    seed: int) -> tuple[list[str], list[int]]:
    """`cfg.copies` noisy copies of every title, copy by copy in file order, each with its source's label."""
    rng = np.random.default_rng(seed)
    out_titles, out_labels = [], []
    for _ in range(cfg.copies):
        for title, label in zip(titles, labels):
            out_titles.append(perturb(title, rng, cfg))
            out_labels.append(int(label))
    return out_titles, out_labels


def write_transfer_split(data_dir: str | os.PathLike, titles: Sequence[str], labels: Sequence[int],
                         stopwords: frozenset[str] = frozenset()) -> Path:
    """The transfer titles as a processed split named `transfer` in `data_dir`: labels.txt is not
    written; text/, char/ and word/ hold it as preprocessing writes train (so every teacher reads it
    as it reads train). Returns data_dir."""
    data_dir = Path(data_dir)
    (data_dir / TEXT_DIR).mkdir(parents=True, exist_ok=True)
    (data_dir / TEXT_DIR / f"{SPLIT}.tsv").write_text(
        "".join(f"{t}\t{y}\n" for t, y in zip(titles, labels)), encoding="utf-8")
    for granularity in GRANULARITIES:
        (data_dir / granularity).mkdir(exist_ok=True)
        stop = stopwords if granularity == "word" else frozenset()
        write_split(data_dir / granularity, SPLIT, [(segment(t, granularity, stop), y) for t, y in zip(titles, labels)])
    return data_dir
