"""Sentence pairs for the sentence-level tasks: next sentence prediction (BERT, ERNIE) and
sentence order prediction (ALBERT, MacBERT).

An example holds consecutive sentences of one document; it is split into A and B at a random
sentence boundary, or inside its one sentence when it has only one (so B always continues A).
- NSP (BERT): half the time B is replaced by sentences of another document; label 1 = random.
- SOP (ALBERT): half the time A and B are swapped; label 1 = swapped. Both halves come from the
  same document, so topic gives nothing away and only order is learned.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from zhbench.pretrain.corpus import Example, Sentence, join

# How many draws to find an example from another document before giving up (a pool with two
# documents finds one in a few draws; the check in `check_pool` guarantees one exists).
MAX_DRAWS = 100


def split(example: Example, rng: np.random.Generator) -> tuple[Sentence, Sentence]:
    sentences = example.sentences
    if len(sentences) >= 2:
        cut = int(rng.integers(1, len(sentences)))
        return join(sentences[:cut]), join(sentences[cut:])
    only = sentences[0]
    if len(only) < 2:
        raise ValueError(f"example {example.index} has one token; a sentence pair needs two")
    cut = int(rng.integers(1, len(only)))
    return only[:cut], only[cut:]


def sentence_order_pair(example: Example, rng: np.random.Generator) -> tuple[Sentence, Sentence, int]:
    a, b = split(example, rng)
    if rng.random() < 0.5:
        return b, a, 1
    return a, b, 0


def check_pool(pool: Sequence[Example]) -> None:
    if len({e.document for e in pool}) < 2:
        raise ValueError("next sentence prediction draws random sentences from another document: "
                         "the collator's pool must hold examples of at least two documents")


def next_sentence_pair(example: Example, pool: Sequence[Example], rng: np.random.Generator,
                       max_tokens: int) -> tuple[Sentence, Sentence, int]:
    """(A, B, label); A + B fit `max_tokens` (a random B is cut to fit)."""
    a, b = split(example, rng)
    if rng.random() >= 0.5:
        return a, b, 0
    for _ in range(MAX_DRAWS):
        other = pool[int(rng.integers(len(pool)))]
        if other.document != example.document:
            break
    else:
        raise ValueError(f"no example of another document in {MAX_DRAWS} draws from a pool of {len(pool)}")
    start = int(rng.integers(len(other.sentences)))
    return a, join(other.sentences[start:])[:max_tokens - len(a)], 1
