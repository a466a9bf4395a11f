"""Static report figures (matplotlib, Agg, no pyplot state), rendered byte-reproducibly.

Same inputs -> same PNG bytes: fixed figure size and dpi, no PNG `Software` chunk (matplotlib
writes no date), the DejaVu font matplotlib ships. Figures drawn from *_timing.json files
(accuracy vs latency, FastBERT speed) change with every run because the times do; the training
curves and the confusion matrices (drawn by the evaluate stages) do not.
"""
from __future__ import annotations

import base64
import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

DPI = 100
# one colour and marker per family of classifier, in legend order
FAMILY_STYLE = {
    "baseline": ("tab:gray", "s"),
    "backbone (char)": ("tab:blue", "o"),
    "backbone (word)": ("tab:cyan", "o"),
    "int8": ("tab:red", "v"),
    "TextCNN": ("tab:green", "D"),
    "FastBERT": ("tab:purple", "^"),
    "ensemble": ("tab:orange", "*"),
}


def _figure(width: float, height: float):
    # matplotlib.figure.Figure renders with Agg through savefig and leaves no global pyplot state.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def save_png(fig, path: str | os.PathLike) -> Path:
    """Write `fig` atomically as a PNG without the Software chunk (the only varying metadata)."""
    from zhbench.io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return path


def png_data_uri(path: str | os.PathLike) -> str:
    """The PNG as a data: URI, for a self-contained HTML report."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


# --- training curves -------------------------------------------------------------------------------

def read_curve(path: str | os.PathLike) -> dict[str, list[float]]:
    """Columns of a curves CSV (train.csv / eval.csv written by zhbench.fit.Curves) as float lists."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {col: [float(r[col]) for r in rows] for col in rows[0]}


def plot_training_curves(curves_dir: str | os.PathLike, title: str, path: str | os.PathLike) -> Path | None:
    """Loss and accuracy against step (train every step, dev at every evaluation); None without CSVs."""
    curves_dir = Path(curves_dir)
    train = read_curve(curves_dir / "train.csv") if (curves_dir / "train.csv").is_file() else {}
    dev = read_curve(curves_dir / "eval.csv") if (curves_dir / "eval.csv").is_file() else {}
    if not train and not dev:
        return None
    fig = _figure(8.0, 3.0)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, key, label in ((loss_ax, "loss", "loss"), (acc_ax, "acc", "accuracy")):
        if train:
            ax.plot(train["step"], train[f"train_{key}"], color="tab:blue", lw=1, alpha=0.7, label=f"train {label}")
        if dev and f"val_{key}" in dev:
            ax.plot(dev["step"], dev[f"val_{key}"], color="tab:orange", lw=1.5, marker="o", ms=3,
                    label=f"dev {label}")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    acc_ax.set_ylim(-0.02, 1.02)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


# --- accuracy vs latency ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LatencyPoint:
    family: str        # a FAMILY_STYLE key
    label: str         # what the point is, e.g. "char/bert" or "speed 0.5"
    latency_ms: float  # milliseconds per sample
    accuracy: float    # test accuracy, 0..1
    basis: str         # how the latency was measured (batch size)


def plot_accuracy_vs_latency(panels: dict[str, Sequence[LatencyPoint]], path: str | os.PathLike,
                             fronts: dict[str, Sequence[LatencyPoint]] | None = None) -> Path | None:
    """One panel per batch size: test accuracy against milliseconds per sample (log scale), the
    Pareto front of each panel drawn as a step line."""
    panels = {k: [p for p in v if p.latency_ms > 0] for k, v in panels.items()}
    if not any(panels.values()):
        return None
    fig = _figure(6.0 * len(panels), 5.5)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, points) in zip(axes, panels.items()):
        for family, (color, marker) in FAMILY_STYLE.items():
            mine = [p for p in points if p.family == family]
            if not mine:
                continue
            ax.scatter([p.latency_ms for p in mine], [p.accuracy for p in mine], color=color, marker=marker, s=36,
                       label=family, alpha=0.85, zorder=3)
            for p in mine:
                ax.annotate(p.label, (p.latency_ms, p.accuracy), textcoords="offset points", xytext=(4, 3),
                            fontsize=6, color=color)
        front = (fronts or {}).get(title) or []
        if front:
            ax.step([p.latency_ms for p in front], [p.accuracy for p in front], where="post", color="black",
                    lw=1, alpha=0.6, label="Pareto front", zorder=2)
        ax.set_xscale("log")
        ax.set_xlabel("ms per sample (log scale)")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


# --- FastBERT speed sweep --------------------------------------------------------------------------

@dataclass(frozen=True)
class SpeedCurve:
    label: str
    speeds: Sequence[float]
    accuracy: Sequence[float]
    speedup: Sequence[float | None]  # time at speed 0 / time at this speed; None where not measured
    ours: bool = False


def plot_fastbert_speed(curves: Sequence[SpeedCurve], path: str | os.PathLike) -> Path | None:
    """Accuracy and speed-up against the FastBERT speed (exit threshold): ours beside the write-up's."""
    curves = [c for c in curves if c.speeds]
    if not curves:
        return None
    fig = _figure(9.0, 3.6)
    acc_ax, speed_ax = fig.subplots(1, 2)
    colors = ["tab:purple", "tab:gray", "tab:olive", "tab:brown"]
    for i, c in enumerate(curves):
        style = dict(color=colors[i % len(colors)], marker="o" if c.ours else "x", lw=2 if c.ours else 1,
                     ls="-" if c.ours else "--", ms=4, label=c.label)
        acc_ax.plot(c.speeds, c.accuracy, **style)
        known = [(s, v) for s, v in zip(c.speeds, c.speedup) if v is not None]
        if known:
            speed_ax.plot([s for s, _ in known], [v for _, v in known], **style)
    acc_ax.set_ylabel("test accuracy")
    speed_ax.set_ylabel("speed-up over speed 0 (×)")
    for ax in (acc_ax, speed_ax):
        ax.set_xlabel("FastBERT speed (early-exit uncertainty threshold)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("FastBERT: accuracy and speed-up against the speed setting", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
