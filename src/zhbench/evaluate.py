"""The one evaluation every classifier in zhbench goes through (baselines, backbones, students).

Quality metrics and measured times are written to separate files: the metrics JSON must be
byte-identical across reruns (the stage contract), a timing never is.
"""
from __future__ import annotations

import csv
import logging
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from zhbench.data.thucnews import read_examples
from zhbench.io import BadInputError, atomic_path, dumps_json, write_json

log = logging.getLogger(__name__)


def read_split(path: str | os.PathLike, n_labels: int) -> tuple[list[str], np.ndarray]:
    """A processed split (`tokens<TAB>label_id` per line) as (token strings, label ids).

    Processed splits have the raw files' shape, so the raw validator checks them, naming file and
    line of a bad row.
    """
    examples = read_examples(path, n_labels).examples
    if not examples:
        raise BadInputError(path, None, "expected at least one 'tokens<TAB>label_id' line, found none")
    return [e.text for e in examples], np.asarray([e.label for e in examples], dtype=np.int64)


def classification_report(
    y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str], loss: float | None = None
) -> dict[str, Any]:
    """Accuracy, macro/weighted P/R/F1, per-class P/R/F1/support and the confusion matrix.

    Every label id in `label_names` is scored, also one missing from this split, so that reports of
    different models and splits always have the same keys; an undefined precision counts as 0.
    """
    # Here, not at the top: most stages import this module only to write timings or read a split,
    # and sklearn.metrics (scipy.stats) costs each of those processes ~2 s.
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(f"expected two equal-length non-empty label vectors, found {y_true.shape} and {y_pred.shape}")
    ids = list(range(len(label_names)))
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= len(ids):
            raise ValueError(f"{name} holds label ids outside 0..{len(ids) - 1}")

    def averaged(average: str) -> dict[str, float]:
        p, r, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=average, zero_division=0)
        return {"precision": float(p), "recall": float(r), "f1": float(f1)}

    p, r, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    report = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro": averaged("macro"),
        "weighted": averaged("weighted"),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(label_names)
        },
        "n_samples": int(len(y_true)),
        "labels": list(label_names),
        # rows: actual label, columns: predicted label, both in `labels` order
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
    }
    if loss is not None:
        report["loss"] = float(loss)
    return report


def _write_confusion_csv(path: Path, report: Mapping[str, Any]) -> None:
    # One row per sample, as the `dvc plots` confusion template counts rows. Rows are rebuilt from
    # the matrix (grouped by actual, then predicted label): the template only counts, and the
    # file then depends on nothing but the report.
    names = report["labels"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        for actual, row in zip(names, report["confusion_matrix"]):
            for predicted, count in zip(names, row):
                writer.writerows([[actual, predicted]] * count)


def font_with_glyphs(texts: Sequence[str]):
    """FontProperties of a font that draws every character of `texts`, or None if no installed font does.

    matplotlib's default (DejaVu Sans) when it suffices; else the first installed font, by file path
    so that every run picks the same one, that has all the glyphs (Chinese class names need a CJK
    font such as Noto Sans CJK, which DejaVu lacks: matplotlib would draw empty boxes).
    """
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    needed = {ord(c) for text in texts for c in text if not c.isspace()}
    default = font_manager.findfont(font_manager.FontProperties())
    # matplotlib's Last Resort font maps every code point to a placeholder box: it has no glyphs
    installed = sorted({f.fname for f in font_manager.fontManager.ttflist if not f.name.startswith("Last Resort")}
                       - {default})
    for path in [default, *installed]:
        try:
            charmap = FT2Font(path).get_charmap()
        except (OSError, RuntimeError):  # a font file matplotlib listed but FreeType cannot open
            continue
        if needed <= charmap.keys():
            return font_manager.FontProperties(fname=path)
    return None


def _write_confusion_png(path: Path, report: Mapping[str, Any], title: str) -> None:
    # The object-oriented API (no pyplot) renders with Agg and leaves no global figure state behind.
    from matplotlib.figure import Figure

    names = report["labels"]
    font = font_with_glyphs(names)
    if font is None:  # numbered as in the metrics JSON's "labels", rather than drawn as empty boxes
        log.warning("no installed font has the glyphs of the class names %s; the confusion heat map numbers "
                    "them instead (install a CJK font, e.g. Noto Sans CJK, to see the names)", names)
        names = [str(i) for i in range(len(names))]
        title += "\n(classes by id: no font has their glyphs)"
    matrix = np.asarray(report["confusion_matrix"])
    size = 2.0 + 0.55 * len(names)
    fig = Figure(figsize=(size + 1.0, size), dpi=100)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontproperties=font)
    ax.set_yticks(range(len(names)), names, fontproperties=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    dark = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if count > dark else "black")
    fig.tight_layout()
    # PNG carries no date; dropping the Software chunk (matplotlib's version) leaves only pixels,
    # so reruns give the same bytes.
    fig.savefig(path, format="png", metadata={"Software": None})


def write_evaluation(
    metrics_json: str | os.PathLike,
    confusion_csv: str | os.PathLike,
    confusion_png: str | os.PathLike,
    reports: Mapping[str, Mapping[str, Any]],
    extra: Mapping[str, Any],
    confusion_split: str = "test",
) -> None:
    """Write the metrics JSON ({**extra, split: report}) and the confusion CSV and heat map of one split.

    `reports` maps a split name ("dev", "test") to a `classification_report`. The three files appear
    together or not at all: all are written to temporary files first and renamed only at the end.
    """
    clash = set(reports) & set(extra)
    if clash:
        raise ValueError(f"extra keys {sorted(clash)} would overwrite split reports")
    if confusion_split not in reports:
        raise ValueError(f"no {confusion_split!r} report to draw a confusion matrix from; have {sorted(reports)}")
    report = reports[confusion_split]
    title = f"{extra.get('model', '')} {confusion_split}".strip()
    with ExitStack() as stack:
        json_tmp, csv_tmp, png_tmp = (
            stack.enter_context(atomic_path(p)) for p in (metrics_json, confusion_csv, confusion_png)
        )
        json_tmp.write_text(dumps_json({**extra, **reports}), encoding="utf-8")
        _write_confusion_csv(csv_tmp, report)
        _write_confusion_png(png_tmp, report, title)


def write_timing(path: str | os.PathLike, timing: Mapping[str, Any]) -> None:
    """Measured times (seconds), kept out of the metrics JSON because they never repeat exactly."""
    write_json(path, dict(timing))
