"""A minimal pre-training loop, for the tests and the measurements only.

The pipeline runs objectives through the project's shared fit loop; this stand-in is the least
that trains one: seeded model and collators, AdamW with linear warm-up and decay, gradient
clipping, optional bf16 autocast, then held-out evaluation.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from zhbench.pretrain import objective_for
from zhbench.pretrain.corpus import read_documents, split_path
from zhbench.pretrain.objective import Objective


@dataclass
class PretrainRun:
    objective: Objective
    model: nn.Module
    losses: list[float] = field(default_factory=list)  # training loss per step
    step_seconds: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # held-out, after the last step


def batches_of(n: int, batch_size: int, rng: np.random.Generator):
    """Index batches over `n` examples, reshuffled every pass, forever."""
    while True:
        order = rng.permutation(n)
        for start in range(0, max(n - batch_size, 0) + 1, batch_size):  # the last partial batch is dropped
            yield order[start:start + batch_size]


def pretrain(family: str, corpus_dir: str | os.PathLike, tokenizer: Tokenizer, steps: int, batch_size: int = 64,
             max_len: int = 128, lr: float = 1e-3, seed: int = 0, warmup_ratio: float = 0.1,
             eval_batches: int = 4, autocast: torch.dtype | None = None, objective_options: dict[str, Any] | None = None,
             overrides: dict[str, Any] | None = None) -> PretrainRun:
    """Pre-train `family` for `steps` optimizer steps on corpus_dir/train.txt and evaluate on the
    first `eval_batches` batches of corpus_dir/heldout.txt (the same batches for every run)."""
    objective = objective_for(family, tokenizer, max_len, **(objective_options or {}))
    train = objective.examples(read_documents(split_path(corpus_dir, "train")))
    heldout = objective.examples(read_documents(split_path(corpus_dir, "heldout")))
    torch.manual_seed(seed)
    model = objective.build_model(overrides)
    data = objective.dataset(train, seed)
    order = batches_of(len(train), batch_size, np.random.default_rng(seed))

    from transformers import get_linear_schedule_with_warmup

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * steps), steps)
    run = PretrainRun(objective, model)
    model.train()
    for _ in range(steps):
        t0 = time.perf_counter()
        batch = data.batch(next(order))
        with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
            loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        run.step_seconds.append(time.perf_counter() - t0)
        run.losses.append(loss.item())

    run.metrics = objective.evaluate(model, heldout_batches(objective, heldout, batch_size, eval_batches, seed + 1))
    return run


def heldout_batches(objective: Objective, heldout: list, batch_size: int, n: int, seed: int) -> list:
    """The first `n` batches of the held-out examples, in order, from a collator of their own."""
    collate = objective.collator(seed, pool=heldout)
    return [collate(heldout[i:i + batch_size]) for i in range(0, len(heldout), batch_size)[:n]]
