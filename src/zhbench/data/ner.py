"""NER corpora as (characters, BIO tags): CLUENER2020 JSON lines and People's Daily 1998 char/tag lines.

Both readers validate every record and fail with `BadInputError` ("path:line: what was expected,
what was found") on the first bad one, so a corrupt or edited copy never trains silently.

BIO policy (one rule for gold and predictions, so they are decoded the same way):
- Gold input must be well-formed: an `I-X` tag must follow `B-X` or `I-X`. The mirrored
  People's Daily files have no `I-` without `B-` (0 in dev and test), so such a tag is an error
  in a gold file, not something to repair silently.
- Predicted tags are decoded leniently, like conlleval / seqeval's default mode: an `I-X` that
  does not continue an `X` entity starts a new one. A CRF can emit such a sequence, and this is
  how seqeval will score it, so the span output and the metrics agree.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from zhbench.io import BadInputError, atomic_path

# The 10 CLUENER2020 entity types, and the display names of the write-up's per-entity table.
CLUENER_TYPES: tuple[str, ...] = (
    "name", "organization", "position", "company", "address",
    "game", "government", "scene", "book", "movie",
)
CLUENER_DISPLAY: dict[str, str] = {
    "name": "Person Name", "organization": "Organization", "position": "Position",
    "company": "Company", "address": "Address", "game": "Game", "government": "Government",
    "scene": "Scene", "book": "Book", "movie": "Movie",
}
PD1998_TYPES: tuple[str, ...] = ("LOC", "ORG", "PER")
PD1998_DISPLAY: dict[str, str] = {t: t for t in PD1998_TYPES}

OUTSIDE = "O"


@dataclass(frozen=True)
class Span:
    """One entity: characters text[start..end], end inclusive (CLUENER's convention)."""

    type: str
    start: int
    end: int


@dataclass
class Sentence:
    chars: list[str]
    tags: list[str]               # BIO, one per char; all "O" for unlabelled text
    line: int = 0                 # 1-based line of the record (first line of a PD sentence)
    id: int | None = None         # CLUENER test ids; None elsewhere
    spans: list[Span] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.chars)


def tag_set(types: Sequence[str]) -> list[str]:
    """O first, then B-/I- per type in the given order: fixes the tag ids."""
    return [OUTSIDE] + [f"{p}-{t}" for t in types for p in ("B", "I")]


# --- spans <-> BIO ----------------------------------------------------------------------------------

def spans_to_bio(length: int, spans: Iterable[Span]) -> list[str]:
    """BIO tags for `length` characters. Spans must be inside [0, length) and must not overlap."""
    tags = [OUTSIDE] * length
    for s in sorted(spans, key=lambda s: (s.start, s.end)):
        if not 0 <= s.start <= s.end < length:
            raise ValueError(f"span {s} is outside a text of {length} characters")
        if any(t != OUTSIDE for t in tags[s.start:s.end + 1]):
            raise ValueError(f"span {s} overlaps another span")
        tags[s.start] = f"B-{s.type}"
        for i in range(s.start + 1, s.end + 1):
            tags[i] = f"I-{s.type}"
    return tags


def bio_to_spans(tags: Sequence[str]) -> list[Span]:
    """Entities of a BIO sequence, lenient (conlleval): an I-X that does not continue X starts one."""
    spans: list[Span] = []
    start, cur = None, None
    for i, tag in enumerate(list(tags) + [OUTSIDE]):
        prefix, _, typ = tag.partition("-")
        continues = prefix == "I" and typ == cur
        if cur is not None and not continues:
            spans.append(Span(cur, start, i - 1))
            cur = None
        if prefix in ("B", "I") and not continues:
            start, cur = i, typ
    return spans


def check_bio(tags: Sequence[str]) -> int | None:
    """Index of the first I-X that does not continue an X entity, or None if the sequence is strict BIO."""
    prev = OUTSIDE
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return i
        prev = tag
    return None


def spans_to_cluener(chars: Sequence[str], spans: Iterable[Span]) -> dict[str, dict[str, list[list[int]]]]:
    """CLUENER's label format {type: {entity text: [[start, end], ...]}} (sorted, so bytes are stable)."""
    out: dict[str, dict[str, list[list[int]]]] = {}
    for s in sorted(spans, key=lambda s: (s.start, s.end, s.type)):
        entity = "".join(chars[s.start:s.end + 1])
        out.setdefault(s.type, {}).setdefault(entity, []).append([s.start, s.end])
    return out


# --- CLUENER ----------------------------------------------------------------------------------------

def _cluener_spans(path, lineno: int, text: str, label, types: Sequence[str], on_nested: str,
                   dropped: list[Span]) -> list[Span]:
    if not isinstance(label, dict):
        raise BadInputError(path, lineno, f"expected \"label\" to be an object {{type: {{entity: [[start, end]]}}}}, found {type(label).__name__}")
    spans: list[Span] = []
    for typ, entities in label.items():
        if typ not in types:
            raise BadInputError(path, lineno, f"unknown entity type {typ!r}; expected one of {', '.join(types)}")
        if not isinstance(entities, dict):
            raise BadInputError(path, lineno, f"expected label[{typ!r}] to map entity text to spans, found {type(entities).__name__}")
        for entity, positions in entities.items():
            if not isinstance(positions, list) or not positions:
                raise BadInputError(path, lineno, f"{typ} {entity!r}: expected a non-empty list of [start, end] spans, found {positions!r}")
            for pos in positions:
                if (not isinstance(pos, list) or len(pos) != 2
                        or not all(isinstance(v, int) and not isinstance(v, bool) for v in pos)):
                    raise BadInputError(path, lineno, f"{typ} {entity!r}: expected a span [start, end] of two integers, found {pos!r}")
                start, end = pos
                if not 0 <= start <= end < len(text):
                    raise BadInputError(path, lineno, f"{typ} {entity!r}: span [{start}, {end}] is outside the text "
                                                      f"(expected 0 <= start <= end < {len(text)})")
                found = text[start:end + 1]
                if found != entity:
                    raise BadInputError(path, lineno, f"{typ} span [{start}, {end}]: expected text[{start}:{end + 1}] == {entity!r}, "
                                                      f"found {found!r}")
                spans.append(Span(typ, start, end))
    # outermost first: by start, longest first
    spans.sort(key=lambda s: (s.start, -s.end, s.type))
    kept: list[Span] = []
    for s in spans:
        if kept and s.start <= kept[-1].end:
            a = kept[-1]
            nested = s.end <= a.end
            if not nested or on_nested != "keep_outer":
                what = "nested" if nested else "crossing"
                hint = " (on_nested='keep_outer' keeps the outer one)" if nested else ""
                raise BadInputError(path, lineno, f"{what} spans: {a.type} [{a.start}, {a.end}] and {s.type} [{s.start}, {s.end}]; "
                                                  f"BIO tagging needs disjoint spans{hint}")
            dropped.append(s)
            continue
        kept.append(s)
    return kept


def read_cluener(path: str | os.PathLike, labelled: bool = True, types: Sequence[str] = CLUENER_TYPES,
                 on_nested: str = "error", dropped: list[Span] | None = None) -> list[Sentence]:
    """Read a CLUENER JSON-lines file. labelled=False reads the unlabelled test format ({"id", "text"}).

    Overlapping spans cannot be BIO-tagged. Crossing spans are always an error. A span nested inside
    another is an error unless on_nested="keep_outer", which keeps the outer span and appends the
    inner one to `dropped`: the official train.json has exactly one such record (line 1507, the
    book title 《招商银行：投资永隆银行浮亏逾百亿港元》 with two company names inside it); dev has none.
    """
    if on_nested not in ("error", "keep_outer"):
        raise ValueError(f"on_nested must be 'error' or 'keep_outer', got {on_nested!r}")
    dropped = [] if dropped is None else dropped
    sentences: list[Sentence] = []
    with open(path, encoding="utf-8-sig") as f:  # a BOM (editors on Windows write one) is not part of line 1
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                raise BadInputError(path, lineno, "expected a JSON object, found an empty line")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise BadInputError(path, lineno, f"expected a JSON object, found invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(record, dict):
                raise BadInputError(path, lineno, f"expected a JSON object, found {type(record).__name__}")
            text = record.get("text")
            if not isinstance(text, str) or not text:
                raise BadInputError(path, lineno, f"expected a non-empty string \"text\", found {text!r}")
            spans: list[Span] = []
            if labelled:
                if "label" not in record:
                    raise BadInputError(path, lineno, "expected a \"label\" object, found none (is this the unlabelled test file?)")
                spans = _cluener_spans(path, lineno, text, record["label"], types, on_nested, dropped)
            chars = list(text)
            sentences.append(Sentence(chars, spans_to_bio(len(chars), spans), lineno, record.get("id"), spans))
    if not sentences:
        raise BadInputError(path, None, "expected at least one record, found an empty file")
    return sentences


# --- People's Daily 1998 ----------------------------------------------------------------------------

def read_pd1998(path: str | os.PathLike, types: Sequence[str] = PD1998_TYPES) -> list[Sentence]:
    """Read `char<SPACE>tag` lines with blank lines between sentences (strict BIO, see module doc)."""
    known = set(tag_set(types))
    sentences: list[Sentence] = []
    chars: list[str] = []
    tags: list[str] = []
    first = 0

    def close():
        if chars:
            sentences.append(Sentence(list(chars), list(tags), first, None, bio_to_spans(tags)))
            chars.clear()
            tags.clear()

    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\n")
            if not line.strip():
                close()
                continue
            parts = line.split(" ")
            if len(parts) != 2 or len(parts[0]) != 1:
                raise BadInputError(path, lineno, f"expected 'char<SPACE>tag' (one character, one tag), found {line[:40]!r}")
            char, tag = parts
            if tag not in known:
                raise BadInputError(path, lineno, f"unknown tag {tag!r}; expected one of {', '.join(sorted(known))}")
            if tag.startswith("I-") and (not tags or tags[-1][2:] != tag[2:]):
                before = tags[-1] if tags else "the sentence start"
                raise BadInputError(path, lineno, f"{tag} must continue a B-{tag[2:]}/I-{tag[2:]} entity, found it after {before}")
            if not chars:
                first = lineno
            chars.append(char)
            tags.append(tag)
    close()
    if not sentences:
        raise BadInputError(path, None, "expected at least one sentence, found none")
    return sentences


# --- predictions --------------------------------------------------------------------------------------

def write_cluener_predictions(path: str | os.PathLike, sentences: Sequence[Sentence],
                              predicted: Sequence[Sequence[str]]) -> None:
    """One JSON line per sentence: {"id", "text", "label": {type: {entity: [[s, e]]}}} (CLUENER format)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i, (sent, tags) in enumerate(zip(sentences, predicted, strict=True)):
            record = {"id": sent.id if sent.id is not None else i, "text": sent.text,
                      "label": spans_to_cluener(sent.chars, bio_to_spans(tags))}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
