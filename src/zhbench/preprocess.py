"""Preprocess a classification dataset: validated rows -> char and word token files + statistics."""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from zhbench.data.thucnews import Example, read_examples, read_labels
from zhbench.io import atomic_dir
from zhbench.text import GRANULARITIES, segment

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
TEXT_DIR = "text"  # zhbench.encoders reads it: raw titles, `title<TAB>label_id`


@dataclass(frozen=True)
class PreprocessConfig:
    on_bad_row: str = "error"
    remove_stopwords: bool = False
    max_rows: dict | None = None  # split -> cap (None = all rows)
    own_data: dict | None = None  # params `data:` of the user's own directory (see read_raw); None: a registry variant
    seed: int = 42                # the dev carve of own data without a dev file


def load_stopwords(path: str | os.PathLike | None) -> frozenset[str]:
    if not path:
        return frozenset()
    return frozenset(w.strip() for w in Path(path).read_text(encoding="utf-8").splitlines() if w.strip())


def preprocess(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: PreprocessConfig,
               stopwords: frozenset[str] = frozenset()) -> dict:
    """Write labels.txt, text/<split>.tsv (raw titles) and <granularity>/<split>.{tsv,ft.txt} into
    out_dir atomically; return stats."""
    labels, full, skipped, provenance = read_raw(Path(raw_dir), cfg)
    splits = {split: subsample(full[split], (cfg.max_rows or {}).get(split)) for split in SPLITS}
    for split in SPLITS:
        for s in skipped[split][:5]:
            log.warning("skipped %s", s)
    with atomic_dir(out_dir) as tmp:
        (tmp / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
        # The titles as they are, for pretrained checkpoints' own tokenizers (which split raw text).
        (tmp / TEXT_DIR).mkdir()
        for split, examples in splits.items():
            (tmp / TEXT_DIR / f"{split}.tsv").write_text("".join(f"{ex.text}\t{ex.label}\n" for ex in examples),
                                                         encoding="utf-8")
        token_lengths: dict[str, dict[str, list[int]]] = {}
        for granularity in GRANULARITIES:
            (tmp / granularity).mkdir()
            stop = stopwords if (granularity == "word" and cfg.remove_stopwords) else frozenset()
            token_lengths[granularity] = {}
            for split, examples in splits.items():
                rows = [(segment(ex.text, granularity, stop), ex.label)
                        for ex in tqdm(examples, desc=f"{granularity}/{split}", leave=False, mininterval=1)]
                token_lengths[granularity][split] = [len(t) for t, _ in rows]
                write_split(tmp / granularity, split, rows)
    return {**dataset_stats(splits, labels, skipped, token_lengths), **provenance}


def read_raw(raw_dir: Path, cfg: PreprocessConfig) -> tuple[list[str], dict, dict, dict]:
    """(label names, examples per split, skipped rows per split, provenance for the stats).

    A registry variant's files are THUCNews-style (class.txt, `title<TAB>label id`); the user's own
    directory is read with its own settings (formats, columns, label names or ids, a carved dev
    split), and its files' sha256 and the dev carve go into the stats."""
    if cfg.own_data is None:
        labels = read_labels(raw_dir / "class.txt")
        results = {split: read_examples(raw_dir / f"{split}.txt", len(labels), cfg.on_bad_row) for split in SPLITS}
        return labels, {s: r.examples for s, r in results.items()}, {s: r.skipped for s, r in results.items()}, {}
    from dataclasses import asdict

    from zhbench.data.own import read_classification_dir

    own = cfg.own_data
    data = read_classification_dir(
        raw_dir, name=own.get("name") or own.get("task"), text_columns=tuple(own.get("text_columns") or ("text",)),
        label_column=own.get("label_column") or "label", label_order=own.get("label_order") or "sorted",
        dev_fraction=float(own.get("dev_fraction", 0.1)), seed=cfg.seed, on_bad_row=cfg.on_bad_row)
    provenance = {"task": data.task,
                  "files": {split: {"file": Path(f.path).name, "sha256": f.sha256} for split, f in data.files.items()},
                  "dev_carve": None if data.dev_carve is None else {
                      **{k: v for k, v in asdict(data.dev_carve).items() if k != "train_lines"},
                      "train_file": Path(data.dev_carve.train_file).name, "rows": len(data.dev_carve.train_lines)}}
    return data.labels, data.splits, data.skipped, provenance


def subsample(examples: list[Example], cap: int | None) -> list[Example]:
    """At most `cap` rows, evenly spaced over the file: test.txt is sorted by label, so a prefix
    would hold one class only. Deterministic, and keeps the file's order."""
    if not cap or cap >= len(examples):
        return examples
    step = len(examples) / cap
    return [examples[int(i * step)] for i in range(cap)]


def write_split(out: Path, split: str, rows: list[tuple[list[str], int]]) -> None:
    # An example with no tokens left (e.g. all stop words) keeps a placeholder so that line
    # numbers stay aligned with the source file across granularities.
    with open(out / f"{split}.tsv", "w", encoding="utf-8") as tsv, \
         open(out / f"{split}.ft.txt", "w", encoding="utf-8") as ft:
        for tokens, label in rows:
            text = " ".join(tokens) if tokens else "[UNK]"
            tsv.write(f"{text}\t{label}\n")
            ft.write(f"__label__{label} {text}\n")


def _percentiles(values: list[int]) -> dict:
    if not values:
        return {}
    arr = np.asarray(values)
    return {f"p{p}": float(np.percentile(arr, p)) for p in (50, 90, 95, 99)} | {
        "min": int(arr.min()), "max": int(arr.max()), "mean": float(arr.mean())}


def dataset_stats(splits: dict[str, list[Example]], labels: list[str], skipped: dict[str, list[str]],
                  token_lengths: dict[str, dict[str, list[int]]]) -> dict:
    titles = {s: [ex.text for ex in exs] for s, exs in splits.items()}
    stats: dict = {"labels": labels, "splits": {}, "overlap": {}}
    for split, exs in splits.items():
        counts = Counter(ex.label for ex in exs)
        stats["splits"][split] = {
            "rows": len(exs),
            "skipped_rows": len(skipped[split]),
            "class_counts": {labels[i]: counts.get(i, 0) for i in range(len(labels))},
            "char_length": _percentiles([len(t) for t in titles[split]]),
            "token_length": {g: _percentiles(lengths[split]) for g, lengths in token_lengths.items()},
            "duplicate_titles": len(titles[split]) - len(set(titles[split])),
        }
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        stats["overlap"][f"{a}-{b}"] = len(set(titles[a]) & set(titles[b]))
    return stats
