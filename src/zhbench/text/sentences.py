"""Chinese text for pretraining: cleaned paragraphs, sentences, and the key two texts are compared by.

- `clean_line`: whitespace runs (ideographic space and NBSP included) become one space, control and
  zero-width characters go, and full-width digits and Latin letters become ASCII (the NER and
  classification sets write them so; People's Daily 1998 writes １９９８年). Full-width punctuation
  stays: it is what Chinese text uses.
- `split_sentences`: a sentence ends at a run of 。！？!?… plus any closing quotes or brackets after it.
  `；` and `.` do not end one (`.` is a decimal point in 5.8万).
- `match_key`: NFKC, case-folded, keeping only letters, digits and ideographs. Two texts with the same
  key differ only in width, case, spacing, punctuation or symbols; dedupe and decontamination compare keys.
"""
from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
# Control characters, soft hyphen, zero-width spaces/joiners, direction marks, BOM: they carry no text.
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_FULLWIDTH_ALNUM = {c: c - 0xFEE0 for lo, hi in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
                    for c in range(lo, hi + 1)}
_NOT_WORD = re.compile(r"[\W_]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

_FINAL = "。！？!?…"
_CLOSERS = "”’」』）)》〉】〕\"'"
_SENTENCE = re.compile(rf".*?(?:[{_FINAL}]+[{re.escape(_CLOSERS)}]*|$)", re.S)


def clean_line(text: str) -> str:
    return _INVISIBLE.sub("", _SPACES.sub(" ", text)).translate(_FULLWIDTH_ALNUM).strip()


def clean_paragraphs(lines: list[str]) -> list[str]:
    """Each line (and each line inside one) cleaned; empty ones dropped."""
    return [p for line in lines for p in (clean_line(part) for part in line.split("\n")) if p]


def split_sentences(paragraph: str) -> list[str]:
    return [s for s in (m.group().strip() for m in _SENTENCE.finditer(paragraph)) if s]


def match_key(text: str) -> str:
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def cjk_count(text: str) -> int:
    """CJK unified ideographs (the basic block and extension A)."""
    return len(_CJK.findall(text))
