"""What every section builder shares: the metrics and reference numbers it reads, how numbers are
written in the tables, and the lines that say how to regenerate a table or that it is missing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhbench import layout
from zhbench.io import read_json
from zhbench.layout import WRITEUP_DATASET
from zhbench.workflow.commands import Rerun


@dataclass
class ReportInputs:
    metrics_dir: Path
    references: dict
    params: dict

    def metrics(self, *parts: str) -> dict | None:
        path = self.metrics_dir.joinpath(*parts)
        return read_json(path) if path.is_file() else None

    def ref(self, *keys: str) -> Any:
        """A write-up reference number; none for data that is not the write-ups' own."""
        if keys and keys[0] == WRITEUP_DATASET and not layout.on_writeup_data(self.params):
            return None
        node: Any = self.references
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    @property
    def profile(self) -> str:
        return str(self.params.get("profile", "default"))

    @property
    def task(self) -> str:
        return layout.task(self.params)

    @property
    def variant(self) -> str:
        return str(self.params.get("data", {}).get("variant", "?"))


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def num(x: float | None, fmt: str = ".4f") -> str:
    return "—" if x is None else format(x, fmt)


def delta_pp(ours: float | None, ref: float | None) -> str:
    return "—" if ours is None or ref is None else f"{100 * (ours - ref):+.2f}"


def step_time(seconds: float | None) -> str:
    """A per-step time like the write-up prints it: 182.0 ms, 1.10 s."""
    if seconds is None:
        return "—"
    return f"{1000 * seconds:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def duration(seconds: float | None) -> str:
    """An epoch time like the write-up prints it: 3.0 s, 1m21s, 2h01m50s."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds >= 0.1 else f"{1000 * seconds:.1f} ms"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def mb(n_bytes: float | None) -> str:
    """Bytes in MiB, the unit of the write-up's `ls` sizes (409169465 B -> 390.2)."""
    return "—" if n_bytes is None else f"{n_bytes / 2**20:.1f}"


def ours_line(profile: str, variant: str) -> str:
    return f"profile `{profile}`, dataset variant `{variant}`"


def regenerate(rerun: Rerun) -> str:
    return f"Regenerate: `{rerun.snakemake()}` or `{rerun.dvc()}`."


def not_run(what: str, rerun: Rerun) -> str:
    return (f"**Not run yet:** no {what} under `metrics/`. Run `{rerun.snakemake()}` or `{rerun.dvc()}`; "
            "nothing is shown in its place.")


def batching_warning(per_sample: dict[str, dict[str, float]]) -> str:
    """A caption warning when a model's time per sample grows with the batch size ({"batch_1":
    {model: s}, "batch_64": {model: s}}). Batching only amortises fixed costs, so a larger batch
    is as fast per sample or faster; a slower one means the CPU was shared while it measured."""
    batches = sorted(per_sample, key=lambda b: int(b.replace("batch_", "")))
    grows = sorted({model for small, large in zip(batches, batches[1:])
                    for model, t in per_sample[large].items()
                    if isinstance(t, (int, float)) and isinstance(per_sample[small].get(model), (int, float))
                    and t > 1.05 * per_sample[small][model]})
    if not grows:
        return ""
    return (f" **Not a result: time per sample grows with the batch size for {', '.join(grows)}**, which batching "
            "cannot do on an idle machine: other work shared the CPU while this was measured.")


def backbone_names(inp: ReportInputs) -> dict[str, list[str]]:
    return layout.backbone_runs(inp.params) if "granularities" in inp.params.get("backbones", {}) else {}

