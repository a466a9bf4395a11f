"""A user's own NER data, any entity types: CLUENER-style JSON lines or BIO `char tag` lines.

The dataset directory holds train, test and an optional dev file (layout in zhbench.data.own_files):
- `.json` / `.jsonl`: CLUENER records {"text": ..., "label": {type: {entity: [[start, end], ...]}}},
  read by zhbench.data.ner.read_cluener;
- `.bio` / `.conll` / `.txt`: one `char<SPACE or TAB>tag` per line and a blank line between
  sentences (People's Daily's layout); tags are O, B-TYPE and I-TYPE in strict BIO, the gold-file
  rule of zhbench.data.ner.

The entity types are the `types` given, else those of the train split in code-point order; a type
in dev or test that the train split lacks is an error naming file and line. Readers stop at the
first bad record: a sentence cannot lose one line and stay correctly tagged, so nothing is skipped.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from zhbench.data.ner import OUTSIDE, Sentence, Span, bio_to_spans, read_cluener
from zhbench.data.own_files import (SPLITS, OwnDataset, SourceFile, carve_dev, find_split_files, is_blank,
                                    lines, read_source, task_name)
from zhbench.io import BadInputError
from zhbench.text import control_character, describe_control

NER_FORMATS = {".json": "cluener", ".jsonl": "cluener", ".bio": "bio", ".conll": "bio", ".txt": "bio"}


def read_ner_dir(path: str | os.PathLike, *, name: str | None = None, types: Sequence[str] | None = None,
                 dev_fraction: float = 0.1, seed: int = 42, on_nested: str = "error") -> OwnDataset[Sentence]:
    """Sentences of every split; dataset.labels are the entity types (tag ids: zhbench.data.ner.tag_set).

    With no dev file, a seeded dev split of dev_fraction of the train sentences is carved
    (dataset.dev_carve records their first lines). on_nested: see read_cluener; a nested span
    dropped under "keep_outer" is listed in dataset.skipped.
    """
    if types is not None:
        types = list(types)
        if not types or len(set(types)) != len(types) or not all(isinstance(t, str) and t for t in types):
            raise ValueError(f"types must be distinct, non-empty entity type names, got {types!r}")
    directory = Path(path)
    task = task_name(name, directory)
    split_files = find_split_files(directory, NER_FORMATS)
    files: dict[str, SourceFile] = {}
    splits: dict[str, list[Sentence]] = {}
    skipped: dict[str, list[str]] = {split: [] for split in SPLITS}
    for split, file in split_files.items():  # train first: it fixes the types
        text, files[split] = read_source(file)
        if NER_FORMATS[file.suffix.lower()] == "bio":
            splits[split] = _parse_bio(file, text, types)
        else:
            splits[split] = _read_cluener(file, types or _cluener_types(text), on_nested, skipped[split])
        if types is None:
            types = sorted({span.type for sentence in splits[split] for span in sentence.spans})
            if not types:
                raise BadInputError(file, None, "expected at least one entity (a B-TYPE tag or a label span) "
                                                "in the train split, found none")
    dev_carve = None
    if "dev" not in splits:
        splits["train"], splits["dev"], dev_carve = carve_dev(splits["train"], dev_fraction, seed,
                                                              str(split_files["train"]), by_label=False)
    return OwnDataset(task, list(types), {split: splits[split] for split in SPLITS}, files, dev_carve, skipped)


def read_bio(path: str | os.PathLike, types: Sequence[str] | None = None) -> list[Sentence]:
    """Sentences of a `char tag` file; types=None accepts any entity type."""
    text, _ = read_source(path)
    return _parse_bio(Path(path), text, types)


def _parse_bio(path: Path, text: str, types: Sequence[str] | None) -> list[Sentence]:
    known = None if types is None else set(types)
    sentences: list[Sentence] = []
    chars: list[str] = []
    tags: list[str] = []
    first = 0
    for lineno, line in lines(text):
        if is_blank(line):
            if chars:
                sentences.append(Sentence(chars, tags, first, None, bio_to_spans(tags)))
                chars, tags = [], []
            continue
        line = line.rstrip(" \t")
        cut = max(line.rfind(" "), line.rfind("\t"))  # the character itself may be a space
        char, tag = line[:cut], line[cut + 1:]
        if cut < 0 or len(char) != 1:
            raise BadInputError(path, lineno, f"expected 'char<SPACE>tag' (one character, one tag), "
                                              f"found {line[:40]!r}")
        control = control_character(char)
        if control:
            raise BadInputError(path, lineno, f"expected a text character, found {describe_control(control)}")
        prefix, dash, typ = tag.partition("-")
        if tag != OUTSIDE and (prefix not in ("B", "I") or not dash or not typ):
            raise BadInputError(path, lineno, f"expected a BIO tag (O, B-TYPE or I-TYPE), found {tag!r}")
        if tag != OUTSIDE and known is not None and typ not in known:
            raise BadInputError(path, lineno, f"unknown entity type {typ!r} in {tag!r}; expected one of "
                                              f"{', '.join(types)}")
        if prefix == "I" and (not tags or tags[-1][2:] != typ):
            before = tags[-1] if tags else "the sentence start"
            raise BadInputError(path, lineno, f"{tag} must continue a B-{typ}/I-{typ} entity, found it after {before}")
        if not chars:
            first = lineno
        chars.append(char)
        tags.append(tag)
    if chars:
        sentences.append(Sentence(chars, tags, first, None, bio_to_spans(tags)))
    if not sentences:
        raise BadInputError(path, None, "expected at least one sentence, found an empty file")
    return sentences


def _cluener_types(text: str) -> list[str]:
    """Entity types named in a CLUENER file's labels, sorted. Records that read_cluener will reject
    are passed over here; it reports them with their line."""
    found: set[str] = set()
    for _, line in lines(text):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        label = record.get("label") if isinstance(record, dict) else None
        if isinstance(label, dict):
            found.update(label)
    return sorted(found)


def _read_cluener(path: Path, types: Sequence[str], on_nested: str, skipped: list[str]) -> list[Sentence]:
    dropped: list[Span] = []
    sentences = read_cluener(path, types=types, on_nested=on_nested, dropped=dropped)
    for sentence in sentences:
        control = control_character(sentence.text)
        if control:
            raise BadInputError(path, sentence.line, f"expected text without control characters, found "
                                                     f"{describe_control(control)}")
    skipped.extend(f"{path}: dropped {s.type} span [{s.start}, {s.end}] nested in another span" for s in dropped)
    return sentences
