"""A user's own dataset directory: its split files, their row formats, hashes and a carved dev split.

The directory holds `train.<ext>`, `test.<ext>` and optionally `dev.<ext>`; each task kind says
which extensions it reads (zhbench.data.own for labelled rows, zhbench.data.own_ner for NER).
Every file is UTF-8 (a BOM is tolerated) and is cut into lines on "\\n" only, as in
zhbench.data.thucnews: str.splitlines() would also break a text at U+2028 and friends.

Row formats (the columns a task asks for, by name):
- `txt`: tab-separated fields in the task's column order, no header (THUCNews, LCQMC);
- `csv` / `tsv`: a header row naming the columns, then one row per example, with CSV quoting as
  Python's csv module and pandas write it (a `.tsv` is the same dialect with a tab delimiter);
- `jsonl`: one JSON object per line.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, Mapping, Sequence, TypeVar

from zhbench.io import BadInputError, read_utf8
from zhbench.text import control_character, describe_control

SPLITS = ("train", "dev", "test")
REQUIRED_SPLITS = ("train", "test")
ROW_FORMATS = {".txt": "txt", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}
ON_BAD_ROW = ("error", "skip")

T = TypeVar("T")


@dataclass(frozen=True)
class SourceFile:
    path: str
    sha256: str


@dataclass(frozen=True)
class DevCarve:
    """A dev split taken from the train file: the rows at `train_lines` went to dev instead of train."""

    train_file: str
    fraction: float
    seed: int
    stratified: bool  # by label: each class gives its share of rows
    train_lines: tuple[int, ...]


@dataclass
class OwnDataset(Generic[T]):
    task: str                      # [a-z0-9_-], safe in file and stage names
    labels: list[str]              # class names in id order; for NER the entity types in tag_set order
    splits: dict[str, list[T]]     # "train", "dev", "test" -> examples in file order
    files: dict[str, SourceFile]   # "train", "dev", "test" (and "classes" for class.txt) -> file read
    dev_carve: DevCarve | None     # None when the directory has a dev file
    skipped: dict[str, list[str]]  # split -> "file:line: reason" of each row left out


def find_split_files(directory: str | os.PathLike, formats: Mapping[str, str]) -> dict[str, Path]:
    """split -> file. train and test are required, dev optional; two files for one split is an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInputError(directory, None, "expected a dataset directory, found no such directory")
    expected = ", ".join(sorted(formats))
    found: dict[str, Path] = {}
    for split in SPLITS:
        candidates = sorted(p for p in directory.iterdir() if p.stem == split and p.is_file())
        unsupported = [p.name for p in candidates if p.suffix.lower() not in formats]
        if unsupported:
            raise BadInputError(directory, None, f"{', '.join(unsupported)}: expected a {split} file ending in one of "
                                                 f"{expected}, found an unsupported extension")
        if len(candidates) > 1:
            raise BadInputError(directory, None, f"expected one {split} file, found {len(candidates)} "
                                                 f"({', '.join(p.name for p in candidates)}); keep one of them")
        if candidates:
            found[split] = candidates[0]
        elif split in REQUIRED_SPLITS:
            raise BadInputError(directory, None, f"expected a {split} file ({split} + one of {expected}), found none")
    return found


def read_source(path: str | os.PathLike) -> tuple[str, SourceFile]:
    """(decoded text, file record with the sha256 of exactly the bytes decoded)."""
    text, data = read_utf8(path)
    return text, SourceFile(str(path), hashlib.sha256(data).hexdigest())


def lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its \\n or \\r\\n)."""
    for lineno, raw in enumerate(text.split("\n"), start=1):
        yield lineno, raw.removesuffix("\r")


def is_blank(line: str) -> bool:
    return not line.strip(" \t")


def clean_text(path: str | os.PathLike, lineno: int, column: str, value: Any) -> str:
    """The value stripped of surrounding whitespace; it must be a string free of C0 controls but tab."""
    if not isinstance(value, str):
        raise BadInputError(path, lineno, f"expected a string in {column!r}, found {type(value).__name__} {value!r}")
    control = control_character(value)
    if control:
        raise BadInputError(path, lineno, f"expected text without control characters in {column!r}, found "
                                          f"{describe_control(control)}")
    return value.strip()


def read_rows(path: Path, text: str, columns: Sequence[str], parse: Callable[[Path, int, dict], T],
              on_bad_row: str, skipped: list[str]) -> list[T]:
    """parse(path, line, {column: value}) for every row. A bad row raises BadInputError naming file and line,
    or, with on_bad_row="skip", is left out and its message appended to `skipped`."""
    fmt = ROW_FORMATS[Path(path).suffix.lower()]
    records = {"txt": _txt_records, "jsonl": _jsonl_records}.get(fmt)
    rows: list[T] = []
    for lineno, values in (records(path, text, columns) if records else
                           _csv_records(path, text, columns, "\t" if fmt == "tsv" else ",")):
        try:
            if isinstance(values, BadInputError):
                raise values
            rows.append(parse(path, lineno, values))
        except BadInputError as e:
            if on_bad_row == "error":
                raise
            skipped.append(str(e))
    if not rows:
        found = f"no rows left after skipping {len(skipped)} bad ones" if skipped else "an empty file"
        raise BadInputError(path, None, f"expected at least one row, found {found}")
    return rows


def _txt_records(path, text: str, columns: Sequence[str]) -> Iterator[tuple[int, dict | BadInputError]]:
    for lineno, line in lines(text):
        if is_blank(line):
            continue
        fields = line.split("\t")
        if len(fields) != len(columns):
            yield lineno, BadInputError(path, lineno, f"expected {len(columns)} tab-separated fields "
                                                      f"'{'<TAB>'.join(columns)}', found {len(fields)}: {line[:60]!r}")
        else:
            yield lineno, dict(zip(columns, fields))


def _csv_records(path, text: str, columns: Sequence[str], delimiter: str) -> Iterator[tuple[int, dict | BadInputError]]:
    # Lines are fed to the csv module one by one, cut on "\n" only; it still joins a quoted field
    # that spans lines, and line_num then tells where each row started.
    dialect = "TSV" if delimiter == "\t" else "CSV"
    reader = csv.reader((line + "\n" for _, line in lines(text.removesuffix("\n"))), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            # After a quoting error the parser's idea of where rows start cannot be trusted (a stray
            # quote swallows the lines after it), so this is never skipped as one bad row.
            raise BadInputError(path, start, f"expected well-formed {dialect}, "
                                             f"found a syntax error: {e}") from None
        if len(row) <= 1 and is_blank("".join(row)):
            continue
        if header is None:
            header = _check_header(path, start, row, columns)
            index = [header.index(c) for c in columns]
        elif len(row) != len(header):
            yield start, BadInputError(path, start, f"expected {len(header)} fields as in the header, found {len(row)}")
        else:
            yield start, {c: row[i] for c, i in zip(columns, index)}


def _check_header(path, lineno: int, row: list[str], columns: Sequence[str]) -> list[str]:
    header = [name.strip() for name in row]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise BadInputError(path, lineno, f"expected distinct column names in the header, found {duplicates} twice")
    missing = [c for c in columns if c not in header]
    if missing:
        raise BadInputError(path, lineno, f"expected column(s) {', '.join(missing)} in the header, "
                                          f"found columns {', '.join(header)}")
    return header


def _jsonl_records(path, text: str, columns: Sequence[str]) -> Iterator[tuple[int, dict | BadInputError]]:
    for lineno, line in lines(text):
        if is_blank(line):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            yield lineno, BadInputError(path, lineno, f"expected a JSON object, found invalid JSON "
                                                      f"({e.msg} at column {e.colno})")
            continue
        if not isinstance(record, dict):
            yield lineno, BadInputError(path, lineno, f"expected a JSON object, found {type(record).__name__}")
            continue
        missing = [c for c in columns if c not in record]
        if missing:
            yield lineno, BadInputError(path, lineno, f"expected key(s) {', '.join(missing)}, found keys "
                                                      f"{', '.join(record) or '(none)'}")
        else:
            yield lineno, {c: record[c] for c in columns}


def task_name(name: str | None, directory: str | os.PathLike) -> str:
    """`name` if given, else the directory's name; lower-cased, other runs of characters become "-"."""
    source = name if name is not None else Path(directory).resolve().name
    task = re.sub(r"[^a-z0-9_-]+", "-", source.lower()).strip("-_")
    if not task:
        raise BadInputError(directory, None, f"expected a task name with some of [a-z0-9_-], found {source!r}; "
                                             "give the dataset a name")
    return task


def carve_dev(items: Sequence[T], fraction: float, seed: int, train_file: str,
              by_label: bool) -> tuple[list[T], list[T], DevCarve]:
    """(train, dev, provenance): round(len * fraction) items (each with a `.line`) go to dev; both keep file order.

    Stratified (by_label, items with a `.label`): each class gives floor(n * fraction) items, the
    remainder goes to the classes with the largest fractional shares (ties: lower label id), and
    every class keeps at least one item in train. Which items: those whose sha256(seed, line) sorts
    first, so the choice depends on nothing but the seed and the line (random.shuffle is not
    promised to stay the same across Python versions).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"dev_fraction must be between 0 and 1 (exclusive), got {fraction!r}")
    strata: dict[int, list[int]] = {}
    for i, item in enumerate(items):
        strata.setdefault(item.label if by_label else 0, []).append(i)
    share = {k: len(members) * fraction for k, members in strata.items()}
    quota = {k: min(math.floor(share[k]), len(strata[k]) - 1) for k in strata}
    spare = round(len(items) * fraction) - sum(quota.values())
    for k in sorted(strata, key=lambda k: (-(share[k] - math.floor(share[k])), k)):
        if spare > 0 and quota[k] < len(strata[k]) - 1:
            quota[k] += 1
            spare -= 1
    chosen: set[int] = set()
    for k, members in strata.items():
        ranked = sorted(members, key=lambda i: hashlib.sha256(f"{seed}:{items[i].line}".encode()).digest())
        chosen.update(ranked[:quota[k]])
    if not chosen:
        raise BadInputError(train_file, None, f"expected a train split large enough to carve a dev split from, found "
                                              f"{len(items)} row(s) at dev_fraction {fraction}; add a dev file")
    train = [item for i, item in enumerate(items) if i not in chosen]
    dev = [item for i, item in enumerate(items) if i in chosen]
    return train, dev, DevCarve(train_file, fraction, seed, by_label, tuple(item.line for item in dev))
