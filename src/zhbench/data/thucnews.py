"""Read and validate THUCNews-style `title<TAB>label` files."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from zhbench.io import BadInputError, read_utf8
from zhbench.text import control_character, describe_control


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    line: int  # 1-based line in the source file, for error messages downstream


@dataclass
class ReadResult:
    examples: list[Example]
    skipped: list[str] = field(default_factory=list)  # "file:line: reason" of rows skipped


def read_labels(path: str | os.PathLike) -> list[str]:
    names = [n.strip() for n in read_utf8(path)[0].splitlines() if n.strip()]
    if not names:
        raise BadInputError(path, None, "no class names found (expected one name per line)")
    if len(set(names)) != len(names):
        raise BadInputError(path, None, f"duplicate class names in {names}")
    return names


def read_examples(path: str | os.PathLike, num_labels: int, on_bad_row: str = "error") -> ReadResult:
    """Parse every row; a bad row raises BadInputError naming file and line, or is skipped and counted."""
    if on_bad_row not in ("error", "skip"):
        raise ValueError(f"on_bad_row must be 'error' or 'skip', got {on_bad_row!r}")
    path = Path(path)
    result = ReadResult([])
    # splitlines() would also split on U+2028 and friends inside titles; split on \n only.
    for lineno, raw in enumerate(read_utf8(path)[0].split("\n"), start=1):
        row = raw.removesuffix("\r")
        if row == "" and lineno > 1:
            continue  # trailing newline / blank line
        try:
            result.examples.append(_parse_row(row, lineno, num_labels, path))
        except BadInputError as e:
            if on_bad_row == "error":
                raise
            result.skipped.append(str(e))
    return result


def _parse_row(row: str, lineno: int, num_labels: int, path: Path) -> Example:
    fields = row.split("\t")
    if len(fields) != 2:
        raise BadInputError(path, lineno, f"expected 'title<TAB>label' (2 fields), found {len(fields)} field(s): {row[:60]!r}")
    title, label = fields[0].strip(), fields[1].strip()
    if not title:
        raise BadInputError(path, lineno, "empty title")
    control = control_character(title)
    if control:
        raise BadInputError(path, lineno, f"expected a title without control characters, found {describe_control(control)}")
    if not label.isdigit() or not 0 <= int(label) < num_labels:
        raise BadInputError(path, lineno, f"label must be an integer in 0..{num_labels - 1}, found {label!r}")
    return Example(title, int(label), lineno)
