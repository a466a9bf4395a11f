"""Split a Chinese title into tokens at a granularity.

The same function is used by preprocessing, the distillation TSV and the prediction service, so a
served model sees exactly the tokens it was trained on.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Iterable

GRANULARITIES = ("char", "word")

# ASCII letters/digits (with the punctuation that glues them: 3.5, 230-290, iPhone6s) stay whole;
# every other non-space character is its own token.
_CHAR_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.\-_'][A-Za-z0-9]+)*|\S")


# C0 controls other than tab: a NUL or a stray newline inside a text would corrupt the
# one-example-per-line files preprocessing writes (and fastText's input), and usually means a
# binary or mis-split file. Tab is the field separator, checked by each reader.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f]")


def control_character(text: str) -> tuple[int, str] | None:
    """(index, character) of the first C0 control character other than tab in `text`, else None."""
    m = _CONTROL.search(text)
    return (m.start(), m.group()) if m else None


def describe_control(found: tuple[int, str]) -> str:
    index, ch = found
    return f"control character U+{ord(ch):04X} at character {index}"


def char_tokens(text: str) -> list[str]:
    return _CHAR_TOKEN.findall(text)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def word_tokens(text: str, stopwords: frozenset[str] = frozenset()) -> list[str]:
    # HMM off: jieba's HMM guesses for unseen words make segmentation depend on the dictionary
    # cache state; the plain dictionary path is deterministic.
    words = (w.strip() for w in _jieba().lcut(text, HMM=False))
    return [w for w in words if w and w not in stopwords]


def segment(text: str, granularity: str, stopwords: Iterable[str] = ()) -> list[str]:
    if granularity == "char":
        return char_tokens(text)
    if granularity == "word":
        return word_tokens(text, frozenset(stopwords))
    raise ValueError(f"unknown granularity {granularity!r}; expected one of {GRANULARITIES}")
