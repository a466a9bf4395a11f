"""A user's own labelled rows: text classification and sentence pairs, read from a dataset directory.

The directory holds train, test and an optional dev file, each `.txt`, `.csv`, `.tsv` or `.jsonl`
(formats in zhbench.data.own_files), and an optional class.txt. In a `.txt` file the fields are the
text column(s) then the label, as in THUCNews (`title<TAB>label`) and LCQMC (`s1<TAB>s2<TAB>label`).

Labels are class names or integer ids (`3`, `-1`; in JSON also 3), never both in one dataset.
- With class.txt (one name per line): it is the label set; names must be in it, ids index into it.
- Without: the classes of the train split. Integer ids are ordered by value and named by it, so
  ids 0..K-1 keep their meaning. Names are ordered by `label_order`: "sorted" (the default; code
  point order, so class ids do not change when the train file is reordered, as in HF
  run_classification) or "first_seen" (order of first appearance in train).
A dev or test label outside the label set is an error, never a skipped row: dropping such rows
would silently shrink an evaluation split. on_bad_row="skip" covers malformed rows only.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from zhbench.data.lcqmc import Pair
from zhbench.data.own_files import (ON_BAD_ROW, ROW_FORMATS, SPLITS, OwnDataset, SourceFile, carve_dev,
                                    clean_text, find_split_files, read_rows, read_source, task_name)
from zhbench.data.thucnews import Example, read_labels
from zhbench.io import BadInputError

CLASS_FILE = "class.txt"
LABEL_ORDERS = ("sorted", "first_seen")
# Several text columns are joined with one space: every tokenizer here (char, jieba word, BERT's)
# splits at whitespace and drops it, so the columns cannot run together into one token and the
# separator adds no token of its own.
TEXT_SEPARATOR = " "

_INTEGER = re.compile(r"[+-]?[0-9]+")

T = TypeVar("T")


@dataclass(frozen=True)
class _Row:
    line: int
    texts: tuple[str, ...]
    label: int | str  # as written: an integer id or a class name


def read_classification_dir(path: str | os.PathLike, *, name: str | None = None,
                            text_columns: Sequence[str] = ("text",), label_column: str = "label",
                            label_order: str = "sorted", dev_fraction: float = 0.1, seed: int = 42,
                            on_bad_row: str = "error") -> OwnDataset[Example]:
    """Examples of every split; several text columns are joined with TEXT_SEPARATOR (empty ones left out).

    With no dev file, a dev split of dev_fraction of the train rows is carved, stratified by label
    and seeded (dataset.dev_carve records which train lines went to dev).
    """
    def example(row: _Row, label: int) -> Example:
        return Example(TEXT_SEPARATOR.join(t for t in row.texts if t), label, row.line)

    return _read_labelled_dir(path, name, text_columns, label_column, label_order, dev_fraction, seed, on_bad_row,
                              every_text=False, exact_classes=None, make=example)


def read_pairs_dir(path: str | os.PathLike, *, name: str | None = None,
                   sentence_columns: Sequence[str] = ("sentence1", "sentence2"), label_column: str = "label",
                   label_order: str = "sorted", dev_fraction: float = 0.1, seed: int = 42,
                   on_bad_row: str = "error") -> OwnDataset[Pair]:
    """Sentence pairs of every split; exactly two classes, and label id 1 is the positive class that
    zhbench.pair scores F1 of: ids 0/1 as written, or with names the second class (class.txt order,
    else label_order: sorted "different" < "same", "no" < "yes"). Both sentences must be non-empty."""
    if len(sentence_columns) != 2:
        raise ValueError(f"sentence_columns must name two columns, got {sentence_columns!r}")

    def pair(row: _Row, label: int) -> Pair:
        return Pair(row.texts[0], row.texts[1], label, row.line)

    return _read_labelled_dir(path, name, sentence_columns, label_column, label_order, dev_fraction, seed,
                              on_bad_row, every_text=True, exact_classes=2, make=pair)


def _read_labelled_dir(path, name: str | None, text_columns: Sequence[str], label_column: str, label_order: str,
                       dev_fraction: float, seed: int, on_bad_row: str, every_text: bool,
                       exact_classes: int | None, make: Callable[[_Row, int], T]) -> OwnDataset[T]:
    text_columns = _check_options(text_columns, label_column, label_order, on_bad_row)
    directory = Path(path)
    task = task_name(name, directory)
    columns = (*text_columns, label_column)
    split_files = find_split_files(directory, ROW_FORMATS)

    def parse(file: Path, lineno: int, values: dict) -> _Row:
        texts = tuple(clean_text(file, lineno, c, values[c]) for c in text_columns)
        empty = [c for c, t in zip(text_columns, texts) if not t]
        if empty and (every_text or len(empty) == len(texts)):
            raise BadInputError(file, lineno, f"expected non-empty text in {', '.join(empty)}, found it empty")
        return _Row(lineno, texts, _parse_label(file, lineno, label_column, values[label_column]))

    files: dict[str, SourceFile] = {}
    rows: dict[str, list[_Row]] = {}
    skipped: dict[str, list[str]] = {split: [] for split in SPLITS}
    for split, file in split_files.items():
        text, files[split] = read_source(file)
        rows[split] = read_rows(file, text, columns, parse, on_bad_row, skipped[split])

    class_file = directory / CLASS_FILE
    class_names = None
    if class_file.is_file():
        _, files["classes"] = read_source(class_file)
        class_names = read_labels(class_file)
    labels, ids = _label_ids(rows, split_files, class_file, class_names, label_order, exact_classes)
    in_train = [labels[i] for i in sorted(set(ids["train"]))]
    if len(in_train) < 2:
        raise BadInputError(split_files["train"], None, f"expected at least 2 classes in the train split, found "
                                                        f"{len(in_train)} ({_listing(in_train)})")

    splits = {split: [make(row, label) for row, label in zip(rows[split], ids[split])] for split in rows}
    dev_carve = None
    if "dev" not in splits:
        splits["train"], splits["dev"], dev_carve = carve_dev(splits["train"], dev_fraction, seed,
                                                              str(split_files["train"]), by_label=True)
    return OwnDataset(task, labels, {split: splits[split] for split in SPLITS}, files, dev_carve, skipped)


def _check_options(text_columns: Sequence[str], label_column: str, label_order: str,
                   on_bad_row: str) -> tuple[str, ...]:
    if isinstance(text_columns, str) or not text_columns:
        raise ValueError(f"text columns must be a non-empty list of column names, got {text_columns!r}")
    columns = tuple(text_columns)
    if len(set(columns)) != len(columns) or label_column in columns:
        raise ValueError(f"text columns {list(columns)} and label column {label_column!r} must be distinct")
    if label_order not in LABEL_ORDERS:
        raise ValueError(f"label_order must be one of {LABEL_ORDERS}, got {label_order!r}")
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row must be one of {ON_BAD_ROW}, got {on_bad_row!r}")
    return columns


def _parse_label(path, lineno: int, column: str, value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise BadInputError(path, lineno, f"expected a class name or an integer id in {column!r}, "
                                          f"found {type(value).__name__} {value!r}")
    label = clean_text(path, lineno, column, value)
    if not label:
        raise BadInputError(path, lineno, f"expected a label in {column!r}, found it empty")
    return int(label) if _INTEGER.fullmatch(label) else label


def _label_ids(rows: dict[str, list[_Row]], files: dict[str, Path], class_file: Path, class_names: list[str] | None,
               label_order: str, exact_classes: int | None) -> tuple[list[str], dict[str, list[int]]]:
    """(label names in id order, split -> label id of each row)."""
    first_row = rows["train"][0]
    integers = isinstance(first_row.label, int)
    for split, split_rows in rows.items():
        for row in split_rows:
            if isinstance(row.label, int) != integers:
                raise BadInputError(files[split], row.line, f"expected {_kind(first_row.label)} labels throughout, "
                                    f"as at {files['train']}:{first_row.line} ({first_row.label!r}), found "
                                    f"{_kind(row.label)} {row.label!r}; mixed integer and name labels are ambiguous")
    if class_names is not None:
        labels = class_names
        if integers:
            id_of = {i: i for i in range(len(labels))}
            where = f"{class_file} (ids 0..{len(labels) - 1})"
        else:
            id_of = {n: i for i, n in enumerate(labels)}
            where = f"{class_file} ({_listing(labels)})"
    else:
        seen = list(dict.fromkeys(row.label for row in rows["train"]))
        values = sorted(seen) if integers or label_order == "sorted" else seen
        labels = [str(v) for v in values]
        id_of = {v: i for i, v in enumerate(values)}
        where = f"the train split {files['train']} ({_listing(labels)})"
    source = class_file if class_names is not None else files["train"]
    if exact_classes is not None and len(labels) != exact_classes:
        raise BadInputError(source, None, f"expected exactly {exact_classes} classes, found {len(labels)} "
                                          f"({_listing(labels)})")
    if len(labels) < 2:
        raise BadInputError(source, None, f"expected at least 2 classes, found {len(labels)} ({_listing(labels)})")
    ids: dict[str, list[int]] = {}
    for split, split_rows in rows.items():
        ids[split] = []
        for row in split_rows:
            if row.label not in id_of:
                what = f"label id {row.label}" if integers else f"label {row.label!r}"
                raise BadInputError(files[split], row.line, f"expected a label of {where}, found {what}")
            ids[split].append(id_of[row.label])
    return labels, ids


def _kind(label: int | str) -> str:
    return "integer" if isinstance(label, int) else "class name"


def _listing(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")
