"""Masked-LM corruption shared by every masking objective: which tokens, and what replaces them.

A row is cut into *units*, the spans that are masked whole: single tokens (BERT), jieba words
(whole-word masking), phrases and entities (ERNIE). Only tokens that are not special tokens are
ever in a unit, so [CLS]/[SEP]/[PAD]/[UNK]/[MASK] and T5's sentinels are never chosen.

Choosing follows BERT's create_pretraining_data.py: the budget is round(15%) of the row's
maskable tokens; units are visited in a random order and taken while they fit the budget. With
n-gram weights (ALBERT, MacBERT) a visited unit starts an n-gram of up to n consecutive units, n
drawn from the weights, shortened to what fits.

Each chosen unit is then, as a whole: replaced by [MASK] (80%), by random tokens (10%) or left as
it is (10%); for MacBERT "[MASK]" becomes "a similar token" (see similar.py).

Why not transformers' DataCollatorForLanguageModeling: its whole-word mode replaces every chosen
word by [MASK] (no 80/10/10), it has no n-gram or phrase units, and its random replacement draws
from the whole vocabulary, special tokens included.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE = -100  # the label of a position that is not predicted (CrossEntropyLoss's ignore_index)


def units_of(groups: np.ndarray) -> list[np.ndarray]:
    """Runs of equal, non-negative group numbers as position arrays; -1 marks a token never masked.

    groups: per position, the unit it belongs to (a word number, or the position itself for
    token-level masking); neighbours with the same number form one unit.
    """
    units: list[np.ndarray] = []
    start = None
    for i in range(len(groups) + 1):
        boundary = i == len(groups) or groups[i] < 0 or (start is not None and groups[i] != groups[start])
        if boundary and start is not None:
            units.append(np.arange(start, i))
            start = None
        if i < len(groups) and groups[i] >= 0 and start is None:
            start = i
    return units


def choose(units: list[np.ndarray], rng: np.random.Generator, probability: float = 0.15,
           ngram_weights: tuple[float, ...] = (1.0,)) -> list[np.ndarray]:
    """The spans to corrupt (each a position array, in choosing order), covering about
    `probability` of the maskable tokens and never more than round(probability * maskable)."""
    maskable = sum(len(u) for u in units)
    if maskable == 0:
        return []
    budget = max(1, int(round(maskable * probability)))
    weights = np.asarray(ngram_weights, dtype=np.float64)
    weights = weights / weights.sum()
    taken = np.zeros(len(units), dtype=bool)
    spans, covered = [], 0
    for start in rng.permutation(len(units)):
        if covered >= budget:
            break
        n = int(rng.choice(len(weights), p=weights)) + 1
        span = []
        for k in range(start, min(start + n, len(units))):
            if taken[k]:
                break
            span.append(k)
        while span and covered + sum(len(units[k]) for k in span) > budget:
            span.pop()
        if not span:
            continue
        taken[span] = True
        positions = np.concatenate([units[k] for k in span])
        covered += len(positions)
        spans.append(positions)
    return spans


@dataclass(frozen=True)
class Corruption:
    """What replaces the chosen spans."""

    mask_id: int
    regular_ids: np.ndarray  # the vocabulary minus special tokens: what random replacement draws from
    mask_prob: float = 0.8
    random_prob: float = 0.1
    # MacBERT: (vocab, k) ids of each token's k most similar tokens (-1: none); used instead of [MASK]
    similar: np.ndarray | None = None

    def __post_init__(self):
        if not (0 <= self.mask_prob and 0 <= self.random_prob and self.mask_prob + self.random_prob <= 1):
            raise ValueError(f"mask_prob {self.mask_prob} and random_prob {self.random_prob} must be "
                             "non-negative and add up to at most 1")

    def apply(self, ids: np.ndarray, spans: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(corrupted ids, labels): labels hold the original id at every chosen position, IGNORE elsewhere."""
        inputs, labels = ids.copy(), np.full_like(ids, IGNORE)
        for span in spans:
            labels[span] = ids[span]
            u = rng.random()
            if u < self.mask_prob:
                inputs[span] = self._first_choice(ids[span], rng)
            elif u < self.mask_prob + self.random_prob:
                inputs[span] = self._random(len(span), rng)
        return inputs, labels

    def _random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.regular_ids[rng.integers(len(self.regular_ids), size=n)]

    def _first_choice(self, original: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.similar is None:
            return np.full_like(original, self.mask_id)
        candidates = self.similar[original]  # (n, k)
        picked = candidates[np.arange(len(original)), rng.integers(candidates.shape[1], size=len(original))]
        # MacBERT: "in rare cases, when there is no similar word, we will degrade to use random word replacement"
        return np.where(picked >= 0, picked, self._random(len(original), rng))
