"""LCQMC question pairs: `sentence1<TAB>sentence2<TAB>label`, label 0 (different intent) or 1 (same)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from zhbench.io import BadInputError


@dataclass(frozen=True)
class Pair:
    s1: str
    s2: str
    label: int
    line: int


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Every line must have exactly 3 tab-separated fields, two non-blank sentences and a 0/1 label."""
    pairs: list[Pair] = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            fields = line.split("\t")
            if len(fields) != 3:
                raise BadInputError(path, lineno, f"expected 3 tab-separated fields 'sentence1<TAB>sentence2<TAB>label', "
                                                  f"found {len(fields)}: {line[:80]!r}")
            s1, s2, label = fields
            for i, s in ((1, s1), (2, s2)):
                if not s.strip():
                    raise BadInputError(path, lineno, f"expected a non-empty sentence{i}, found {s!r}")
            if label not in ("0", "1"):
                raise BadInputError(path, lineno, f"expected label 0 or 1, found {label!r}")
            pairs.append(Pair(s1, s2, int(label), lineno))
    if not pairs:
        raise BadInputError(path, None, "expected at least one sentence pair, found an empty file")
    return pairs
