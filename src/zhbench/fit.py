"""The one training loop: every trainable model of zhbench (backbone classifier, BERT+CRF tagger,
sentence-pair classifier, TextCNN student, FastBERT students, self-supervised pretraining) goes
through `fit`, in the style of run_glue_no_trainer and nanoGPT.

A task contributes its data and its model, nothing else:
- the data is anything with `len()` and `batch(index) -> dict of tensors` (optionally `lengths`,
  for length bucketing under dynamic padding);
- the model's `forward(**batch)` returns its loss: a tensor, or an output with `.loss` (and
  `.logits` when the batch has `labels`, for the train accuracy on the log line);
- optionally `head_parameters()` (trained at `head_lr`) and an `evaluate(model)` callable that
  scores dev, for the evaluation cadence, best-state selection and early stopping.

The loop owns device placement, precision (autocast; a GradScaler for fp16), gradient
accumulation, DistributedDataParallel, evaluation cadence, early stopping, the progress bar, the
write-up's log line and the training curves. It reads no params.yaml and no paths: a stage fills a
`FitSettings`. Quality numbers and measured times are kept apart, so metrics stay byte-identical
across reruns while timings vary.

Distributed (torchrun, or `train_backbone --workers N`): every rank draws the same global batches
from the same seeded generator and takes its share (`RankShare`), DDP averages the gradients, the
train/dev numbers are summed over ranks on the device (so every rank takes the same early-stopping
decision), and only rank 0 logs, draws the bar and writes curves; the caller saves on rank 0.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from zhbench.devices import DEVICES, PRECISIONS, autocast_dtype, device_name, resolve_device, resolve_precision
from zhbench.features import BucketBatches, ShuffledBatches

log = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("linear", "constant")


@dataclass
class FitSettings:
    """How one model trains. One type for every task; each task's params section fills it."""

    epochs: int = 3
    batch_size: int = 64          # examples per optimizer step, over all ranks and accumulation steps
    lr: float = 1e-3              # scratch mini: 1e-3 learned well on titles; pretrained wants 2e-5..5e-5
    head_lr: float | None = None  # the model's head_parameters() at their own rate (new layers learn faster)
    optimizer: str = "adamw"      # adamw: decoupled decay, none on 1-D params | adam: the write-up's TextCNN
    schedule: str = "linear"      # linear warmup then linear decay to 0 | constant
    warmup_ratio: float = 0.1     # share of all optimizer steps spent warming the lr up
    weight_decay: float = 0.01    # matrices and embeddings only (biases and norm gains: see make_optimizer)
    grad_clip: float = 1.0        # max global grad norm; <= 0 disables
    eval_every: int | None = None # optimizer steps between dev evaluations; None: only the caller evaluates
    patience_steps: int = 1000    # stop after this many steps without a better dev loss (the write-ups' require_improvement)
    max_steps: int | None = None  # hard cap on optimizer steps (smoke runs); None: epochs decide
    dynamic_padding: bool = False # pad each batch to its longest row, with length bucketing
    eval_batch_size: int | None = None  # defaults to 2 * batch_size (no gradients to hold)
    seed: int = 42
    threads: int = 1              # torch intra-op threads (match the scheduler's allotment)
    device: str = "cpu"           # auto | cpu | cuda | mps (zhbench.devices)
    precision: str = "fp32"       # auto | fp32 | bf16 | fp16: autocast of forward and loss
    grad_accum_steps: int = 1     # micro-batches per optimizer step (the batch is split, the schedule kept)

    INTS = ("epochs", "batch_size", "eval_every", "patience_steps", "max_steps", "eval_batch_size", "seed",
            "threads", "grad_accum_steps")
    FLOATS = ("lr", "head_lr", "warmup_ratio", "weight_decay", "grad_clip")

    @classmethod
    def from_dict(cls, d: dict, where: str = "train settings") -> "FitSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; expected some of {sorted(known)}")
        out = {}
        for k, v in d.items():
            if v is None or k not in cls.INTS + cls.FLOATS:
                out[k] = v
                continue
            try:  # PyYAML reads `5e-4` (no dot) as a string; coerce here instead of failing deep in AdamW
                out[k] = float(v) if k in cls.FLOATS else int(v)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {k} must be a number, found {v!r}") from None
        s = cls(**out)
        checks = [
            (s.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, found {s.optimizer!r}"),
            (s.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, found {s.schedule!r}"),
            (s.device in DEVICES, f"device must be one of {DEVICES}, found {s.device!r}"),
            (s.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, found {s.precision!r}"),
            (isinstance(s.dynamic_padding, bool), f"dynamic_padding must be true/false, found {s.dynamic_padding!r}"),
            (s.batch_size >= 1 and s.grad_accum_steps >= 1, "batch_size and grad_accum_steps must be >= 1"),
            (s.eval_every is None or s.eval_every >= 1, f"eval_every must be >= 1 or null, found {s.eval_every}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"{where}: {msg}")
        return s


@dataclass
class FitResult:
    steps: int
    epochs_run: float
    best_step: int = 0
    best_val_loss: float = math.inf
    best_val_acc: float = 0.0
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)  # one row per dev evaluation
    epochs: list[dict] = field(default_factory=list)   # per epoch: epoch, steps, mean train loss
    last_loss: float | None = None                     # the final step's training loss
    timing: dict = field(default_factory=dict)         # measured, never part of quality metrics

    @property
    def train_loss(self) -> float:
        """Mean training loss of the last epoch run (what NER / pair report)."""
        return self.epochs[-1]["train_loss"] if self.epochs else math.nan


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    batches: int = 0


class TensorRows:
    """Row-aligned tensors as fit reads them: batch(index) -> every tensor's rows `index`."""

    def __init__(self, **tensors: torch.Tensor):
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def batch(self, index) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.tensors.items()}


# --- distributed -----------------------------------------------------------------------------------

def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) unless torchrun started us and a process group is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def sum_over_ranks(*values: float, device=None) -> list[float]:
    """Element-wise sum over ranks, on the device (nccl reduces GPU tensors), in float64 so the sum
    keeps the last digits."""
    if dist_info()[1] == 1:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


class RankShare:
    """This rank's share of every global batch: rows rank, rank + world, ... of the batch the
    single-process sampler draws. Every rank draws the same global batches from the same seeded
    generator, so N processes see exactly the batches one process sees, and DDP's gradient average
    over equal shares is the gradient of the global batch (up to float summation order).

    A global batch with fewer rows than ranks gives the rankless processes the whole batch: the
    average over ranks is then still the global batch's gradient, and every rank takes the step,
    which keeps the gradient all-reduce in lockstep."""

    def __init__(self, batches, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            yield batch[self.rank::self.world] or batch


def make_batches(data, s: FitSettings, generator: torch.Generator):
    """The epoch's batch order: a seeded generator (identical across runs), length bucketing under
    dynamic padding; distributed, each rank's share of the same global batches."""
    if s.dynamic_padding and hasattr(data, "lengths"):
        batches = BucketBatches(data.lengths, s.batch_size, generator)
    else:
        batches = ShuffledBatches(len(data), s.batch_size, generator)
    rank, world = dist_info()
    return RankShare(batches, rank, world) if world > 1 else batches


def micro_batches(index: list[int], steps: int) -> list[list[int]]:
    """`index` cut into `steps` contiguous parts (fewer when it has fewer rows)."""
    steps = max(1, min(steps, len(index)))
    size = math.ceil(len(index) / steps)
    return [index[i:i + size] for i in range(0, len(index), size)]


def to_device(batch: dict[str, Any], device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def autocast(device, precision: str):
    """The forward-pass context for `precision` on `device` (fp32: none)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# --- optimizer -------------------------------------------------------------------------------------

def make_optimizer(model: nn.Module, s: FitSettings, total_steps: int):
    """AdamW with linear warmup/decay, or the write-up's plain Adam. Biases and norm gains (1-D
    params) get no weight decay: pulling them toward zero only fights the normalisation. A model's
    head_parameters() (when it has them) form a group of their own at head_lr, without decay."""
    from transformers import get_constant_schedule, get_linear_schedule_with_warmup

    head = list(model.head_parameters()) if s.head_lr is not None and hasattr(model, "head_parameters") else []
    head_ids = {id(p) for p in head}
    trainable = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    if s.optimizer == "adam":
        optimizer = torch.optim.Adam(trainable, lr=s.lr)
    else:
        decay = [p for p in trainable if p.ndim >= 2]
        no_decay = [p for p in trainable if p.ndim < 2]
        groups = [{"params": decay, "lr": s.lr, "weight_decay": s.weight_decay},
                  {"params": no_decay, "lr": s.lr, "weight_decay": 0.0}]
        if head:
            groups.append({"params": head, "lr": s.head_lr, "weight_decay": 0.0})
        optimizer = torch.optim.AdamW(groups, lr=s.lr)
    if s.schedule == "constant":
        return optimizer, get_constant_schedule(optimizer)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(s.warmup_ratio * total_steps), total_steps)


# --- the write-up's log line -----------------------------------------------------------------------

def format_elapsed(seconds: float) -> str:
    """h:mm:ss, as the write-ups' get_time_dif printed it (timedelta of whole seconds)."""
    sec = int(round(seconds))
    return f"{sec // 3600}:{sec % 3600 // 60:02d}:{sec % 60:02d}"


def format_iter_line(step: int, train_loss: float, train_acc: float | None, val_loss: float, val_acc: float,
                     elapsed: float, improved: bool) -> str:
    acc = f", Train Acc: {train_acc:.2%}" if train_acc is not None else ""
    return (f"Iter: {step}, Train Loss: {train_loss:.2f}{acc}, Val Loss: {val_loss:.2f}, Val Acc: {val_acc:.2%}, "
            f"Time: {format_elapsed(elapsed)}" + (" *" if improved else ""))


# --- the loop --------------------------------------------------------------------------------------

def fit(model: nn.Module, train_data, s: FitSettings, evaluate: Callable[[nn.Module], Evaluation] | None = None,
        curves_dir: str | os.PathLike | None = None, progress: bool = True, desc: str = "train") -> FitResult:
    """Train `model` in place on `train_data`; with `evaluate` and `s.eval_every`, it returns holding
    the weights of its best dev-loss evaluation, and stops early after `s.patience_steps` without one.

    Seeding here covers everything the loop draws (dropout masks, shuffling); the caller seeds
    before building the model, so that initial weights are reproducible too."""
    from zhbench.runtime import set_threads

    if len(train_data) == 0:
        raise ValueError("no training examples")
    set_threads(s.threads)
    device = resolve_device(s.device)
    precision = resolve_precision(s.precision, device)
    rank, world = dist_info()
    main_rank = rank == 0
    # Dropout draws from the global generator (per rank, so ranks do not share masks); shuffling
    # has its own generator, so evaluations never shift the batch order.
    torch.manual_seed(s.seed + rank)
    generator = torch.Generator().manual_seed(s.seed)
    batches = make_batches(train_data, s, generator)
    model.to(device)
    step_model = model  # what the training step calls; `model` stays the plain module
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    steps_per_epoch = len(batches)
    total_steps = s.epochs * steps_per_epoch
    if s.max_steps is not None:
        total_steps = min(total_steps, s.max_steps)
    optimizer, scheduler = make_optimizer(model, s, total_steps)
    evaluating = evaluate is not None and s.eval_every is not None
    curves = Curves(curves_dir) if curves_dir is not None and main_rank else None

    result = FitResult(steps=0, epochs_run=0.0)
    best_state: dict[str, torch.Tensor] | None = None
    step_seconds = valid_seconds = 0.0
    valid_batches = valid_runs = 0
    epoch_seconds: list[float] = []
    step, start = 0, time.perf_counter()
    if main_rank:
        log.info("%s: %d examples, %d steps/epoch, %d steps, %d process(es) on %s in %s, settings %s", desc,
                 len(train_data), steps_per_epoch, total_steps, world, device, precision, asdict(s))
    # Log lines go through tqdm.write while the bar is up, so they do not tear the bar apart.
    with logging_redirect_tqdm():
        bar = tqdm(total=total_steps, desc=desc, unit="step", disable=not (progress and main_rank), mininterval=1.0)
        model.train()
        done = False
        for epoch in range(s.epochs):
            epoch_loss_sum, epoch_steps, t_epoch = 0.0, 0, 0.0
            for index in batches:
                t0 = time.perf_counter()
                loss_sum, batch_loss, correct, has_acc = _step(step_model, model, train_data, index, s, device,
                                                               precision, scaler, optimizer, scheduler)
                t_epoch += time.perf_counter() - t0
                step += 1
                epoch_steps += 1
                bar.update(1)
                # Like the write-ups, the train numbers on the log line are the current batch's.
                n = len(index)
                loss_sum, correct, count = sum_over_ranks(loss_sum, correct, n, device=device)
                train_loss = loss_sum / count
                train_acc = correct / count if has_acc else None
                # The epoch mean and the last loss add up the loss as the model returned it (this
                # rank's), not the rounded-trip loss_sum / count above.
                batch_loss = train_loss if world > 1 else batch_loss
                result.last_loss = batch_loss
                epoch_loss_sum += batch_loss
                row = {"step": step, "train_loss": train_loss, "train_acc": train_acc}

                last = step == total_steps
                if evaluating and (step % s.eval_every == 0 or last):
                    t_eval = time.perf_counter()
                    ev = evaluate(model)
                    valid_seconds += time.perf_counter() - t_eval
                    valid_batches += ev.batches
                    valid_runs += 1
                    improved = ev.loss < result.best_val_loss
                    if improved:
                        result.best_val_loss, result.best_val_acc, result.best_step = ev.loss, ev.accuracy, step
                        # A copy in memory: cheap for mini models, and no half-written file if killed.
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    row.update(val_loss=ev.loss, val_acc=ev.accuracy)
                    result.history.append(dict(row))
                    if main_rank:
                        log.info(format_iter_line(step, train_loss, train_acc, ev.loss, ev.accuracy,
                                                  time.perf_counter() - start, improved))
                    if step - result.best_step >= s.patience_steps:
                        log.info("No optimization for %d steps, auto-stopping...", step - result.best_step)
                        result.stopped_early = done = True
                if curves is not None:
                    curves.log(row)
                done = done or last
                if done:
                    break
            step_seconds += t_epoch
            # Only full epochs count for the epoch time; a cut-short epoch would understate it.
            if epoch_steps == steps_per_epoch:
                epoch_seconds.append(t_epoch)
            result.epochs.append({"epoch": epoch + 1, "steps": step, "train_loss": epoch_loss_sum / max(epoch_steps, 1)})
            if main_rank and not evaluating:
                log.info("epoch %d: %d steps, mean train loss %.4f", epoch + 1, epoch_steps, result.epochs[-1]["train_loss"])
            if done:
                break
        bar.close()
    if curves is not None:
        curves.flush()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()

    result.steps = step
    result.epochs_run = step / steps_per_epoch
    step_time = step_seconds / max(step, 1)
    result.timing = {
        "device": device_name(device),
        "device_type": device.type,
        "precision": precision,
        "threads": s.threads,
        "world_size": world,
        "batch_size": s.batch_size,  # the effective batch: all ranks, all accumulation steps
        "grad_accum_steps": s.grad_accum_steps,
        "train_steps": step,
        "train_step_time": step_time,
        # measured when a full epoch ran, else extrapolated from the step time
        "train_epoch_time": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else step_time * steps_per_epoch,
        "valid_step_time": valid_seconds / max(valid_batches, 1),
        "valid_epoch_time": valid_seconds / max(valid_runs, 1),
        "train_total_time": time.perf_counter() - start,
        "steps_per_second": step / max(step_seconds, 1e-9),
    }
    if evaluating and main_rank:
        log.info("best dev loss %.4f (acc %.2f%%) at step %d of %d", result.best_val_loss,
                 100 * result.best_val_acc, result.best_step, step)
    return result


def _step(step_model, model, data, index, s: FitSettings, device, precision, scaler, optimizer, scheduler):
    """One optimizer step over the batch `index`: (sum of example losses, the batch's mean loss,
    correct count, whether the model gave logits to count them)."""
    parts = micro_batches(index, s.grad_accum_steps) if s.grad_accum_steps > 1 else [index]
    optimizer.zero_grad(set_to_none=True)
    loss_sum, batch_loss, correct, has_acc = 0.0, 0.0, 0, False
    for i, part in enumerate(parts):
        batch = to_device(data.batch(part, s.dynamic_padding) if s.dynamic_padding else data.batch(part), device)
        # Only the last micro-batch all-reduces its gradients; the others accumulate locally.
        sync = i == len(parts) - 1 or not hasattr(step_model, "no_sync")
        with (contextlib.nullcontext() if sync else step_model.no_sync()), autocast(device, precision):
            out = step_model(**batch)
        loss = out if isinstance(out, torch.Tensor) else out.loss
        scaled = loss if len(parts) == 1 else loss * (len(part) / len(index))
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        value = loss.item()
        loss_sum += value * len(part)
        batch_loss = value if len(parts) == 1 else batch_loss + value * len(part) / len(index)
        logits = None if isinstance(out, torch.Tensor) else getattr(out, "logits", None)
        # A train accuracy for sequence classifiers (one label per row), not for token-level outputs.
        if logits is not None and "labels" in batch and logits.dim() == 2 and batch["labels"].dim() == 1:
            correct += (logits.argmax(dim=-1) == batch["labels"]).sum().item()
            has_acc = True
    if scaler is not None:
        scaler.unscale_(optimizer)
    if s.grad_clip and s.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    return loss_sum, batch_loss, correct, has_acc


# --- training curves -------------------------------------------------------------------------------

class Curves:
    """Training curves as two CSV files the stage declares as DVC plots:
    train.csv (step,train_loss,train_acc; every step) and eval.csv (+ val_loss,val_acc; every
    evaluation).

    Why not dvclive: Live() inspects the git/DVC repository of the working directory even with
    save_dvc_exp=False (it fails in a repo without commits), so a stage would depend on repo state.
    Plain CSV needs nothing, and rounded values keep the bytes identical across reruns. The files
    are rewritten atomically at each evaluation, so they can be watched during a long run.
    """

    TRAIN_COLUMNS = ("step", "train_loss", "train_acc")
    EVAL_COLUMNS = ("step", "train_loss", "train_acc", "val_loss", "val_acc")

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.train_rows: list[dict] = []
        self.eval_rows: list[dict] = []

    def log(self, row: dict) -> None:
        self.train_rows.append(row)
        if "val_loss" in row:
            self.eval_rows.append(row)
            self.flush()

    def flush(self) -> None:
        from zhbench.io import write_text

        for name, columns, rows in (("train.csv", self.TRAIN_COLUMNS, self.train_rows),
                                    ("eval.csv", self.EVAL_COLUMNS, self.eval_rows)):
            lines = [",".join(columns)]
            lines += [",".join(_fmt(r[c]) for c in columns) for r in rows]
            write_text(self.dir / name, "\n".join(lines) + "\n")


def _fmt(v) -> str:
    if v is None:
        return ""
    return str(v) if isinstance(v, int) else f"{v:.6f}"
