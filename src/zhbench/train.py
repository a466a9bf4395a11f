"""One fine-tuning loop for every backbone (a readable loop in the style of run_glue_no_trainer).

The loop knows nothing about params.yaml or file layout: a stage script builds the model and the
features, fills a `TrainConfig`, and gets back the trained model (best dev-loss state restored),
its history and a timing dict. Quality numbers and measured times are kept apart, so metrics stay
byte-identical across reruns while timings are free to vary.

Distributed training (torchrun --nproc-per-node N, gloo on CPU) is the same loop: when a process
group is initialised, `make_train_batches` gives each rank its share of the same global batches,
`wrap_model` puts the model in DistributedDataParallel, train/dev numbers are summed over ranks (so
every rank takes the same early-stopping decision), and only rank 0 logs, draws the bar and writes
curves; the caller saves on rank 0. Without a process group, nothing of this runs.
"""
from __future__ import annotations

import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from zhbench.features import BucketBatches, Features, ShuffledBatches, sequential_batches

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    batch_size: int = 64          # titles are short; 64 keeps a CPU core busy without long steps
    max_len: int = 32             # tokens incl. [CLS]/[SEP]; covers ~all THUCNews titles at char level
    lr: float = 1e-3              # scratch mini: 1e-3 learned well on 9k titles, 2e-3 stalled; pretrained wants 2e-5..5e-5
    epochs: int = 3
    warmup_ratio: float = 0.1     # share of all optimizer steps spent warming the lr up linearly
    weight_decay: float = 0.01    # applied to matrices and embeddings only (see make_optimizer)
    grad_clip: float = 1.0        # max global grad norm; <=0 disables
    eval_every: int = 100         # optimizer steps between dev evaluations
    patience_steps: int = 1000    # stop after this many steps without a better dev loss (the seed's require_improvement)
    seed: int = 42
    threads: int = 1              # torch intra-op threads (match the scheduler's allotment)
    dynamic_padding: bool = False # pad each batch to its longest row, with length bucketing
    max_steps: int | None = None  # hard cap on optimizer steps (smoke runs); None = epochs decide
    eval_batch_size: int | None = None  # defaults to 2 * batch_size (no gradients to hold)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown train settings {sorted(unknown)}; expected a subset of {sorted(known)}")
        # PyYAML reads `5e-4` (no dot) as a string; coerce numbers here instead of failing deep in AdamW.
        floats = {"lr", "warmup_ratio", "weight_decay", "grad_clip"}
        ints = {"batch_size", "max_len", "epochs", "eval_every", "patience_steps", "seed", "threads",
                "max_steps", "eval_batch_size"}
        out = {}
        for k, v in d.items():
            try:
                out[k] = (float(v) if k in floats else int(v) if k in ints else v) if v is not None else None
            except (TypeError, ValueError):
                raise ValueError(f"train setting {k}: expected a number, found {v!r}") from None
        if not isinstance(out.get("dynamic_padding", False), bool):
            raise ValueError(f"train setting dynamic_padding: expected true/false, found {d['dynamic_padding']!r}")
        return cls(**out)


@dataclass
class TrainResult:
    best_step: int
    best_val_loss: float
    best_val_acc: float
    steps: int
    epochs_run: float
    stopped_early: bool
    history: list[dict] = field(default_factory=list)  # one row per dev evaluation
    timing: dict = field(default_factory=dict)         # measured, never part of quality metrics


# --- small builders (the pieces a DDP variant swaps) ------------------------------------------------

def make_optimizer(model: nn.Module, cfg: TrainConfig, num_training_steps: int):
    """AdamW + linear warmup/decay. Biases and norm gains (1-D params) get no weight decay: pulling
    them toward zero only fights the normalisation, it does not regularise."""
    from transformers import get_linear_schedule_with_warmup

    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, num_warmup_steps=int(cfg.warmup_ratio * num_training_steps),
        num_training_steps=num_training_steps,
    )
    return optimizer, scheduler


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) unless torchrun started us and a process group is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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


def make_train_batches(train: Features, cfg: TrainConfig, generator: torch.Generator):
    """The epoch's batch order: a seeded generator (identical across runs), with length bucketing
    under dynamic padding. Distributed, each rank takes its share of the same global batches."""
    if cfg.dynamic_padding:
        batches = BucketBatches(train.lengths, cfg.batch_size, generator)
    else:
        batches = ShuffledBatches(len(train), cfg.batch_size, generator)
    rank, world = dist_info()
    return RankShare(batches, rank, world) if world > 1 else batches


def wrap_model(model: nn.Module) -> nn.Module:
    """DistributedDataParallel when distributed (averages gradients over ranks), else the model."""
    if dist_info()[1] > 1:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)
    return model


def _sum_over_ranks(*values: float) -> list[float]:
    """Element-wise sum over ranks (float64, so the sum does not lose the last digits)."""
    if dist_info()[1] == 1:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def device_name() -> str:
    """What the timings were measured on: the GPU name, else the CPU model from /proc/cpuinfo."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def format_elapsed(seconds: float) -> str:
    """h:mm:ss, as the seed's get_time_dif printed it (timedelta of whole seconds)."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_iter_line(step: int, train_loss: float, train_acc: float, val_loss: float, val_acc: float,
                     elapsed: float, improved: bool) -> str:
    return (f"Iter: {step}, Train Loss: {train_loss:.2f}, Train Acc: {train_acc:.2%}, "
            f"Val Loss: {val_loss:.2f}, Val Acc: {val_acc:.2%}, Time: {format_elapsed(elapsed)}"
            + (" *" if improved else ""))


# --- evaluation ------------------------------------------------------------------------------------

@torch.no_grad()
def predict(model: nn.Module, features: Features, batch_size: int = 128,
            dynamic_padding: bool = False) -> tuple[torch.Tensor, float]:
    """Logits for every row in file order, and the mean cross-entropy over all rows.

    Returns (logits [N, C] float32, loss). Batches are in file order, so the result does not depend
    on any sampler state.
    """
    logits, loss_sum = _predict_sum(model, features, batch_size, dynamic_padding)
    return logits, loss_sum / len(features)


def _predict_sum(model, features, batch_size, dynamic_padding):
    was_training = model.training
    model.eval()
    chunks, loss_sum = [], 0.0
    # no_grad: kept logits would otherwise hold every batch's autograd graph until the end (a 10k-row
    # dev pass of a mini T5 grew to 17 GB and was OOM-killed); the values are the same either way.
    with torch.no_grad():
        for idx in sequential_batches(len(features), batch_size):
            batch = features.batch(idx, dynamic_padding)
            logits = model(batch["input_ids"], batch["attention_mask"])
            loss_sum += F.cross_entropy(logits, batch["labels"], reduction="sum").item()
            chunks.append(logits.float())
    model.train(was_training)
    return torch.cat(chunks), loss_sum


def _evaluate(model: nn.Module, dev: Features, cfg: TrainConfig) -> tuple[float, float, float, int]:
    """(loss, accuracy, seconds, batches) on dev; distributed, each rank scores rows rank::world
    and the sums are added up, so every rank gets the same numbers."""
    start = time.perf_counter()
    rank, world = dist_info()
    shard = dev if world == 1 else dev.subset(range(rank, len(dev), world))
    bs = cfg.eval_batch_size or 2 * cfg.batch_size
    logits, loss_sum = _predict_sum(model, shard, bs, cfg.dynamic_padding)
    correct = (logits.argmax(dim=1) == shard.labels).sum().item()
    loss_sum, correct, count = _sum_over_ranks(loss_sum, correct, len(shard))
    return loss_sum / count, correct / count, time.perf_counter() - start, math.ceil(len(shard) / bs)


# --- the loop --------------------------------------------------------------------------------------

def train(model: nn.Module, train_features: Features, dev_features: Features, cfg: TrainConfig,
          curves_dir: str | os.PathLike | None = None, progress: bool = True) -> TrainResult:
    """Train `model` in place; on return it holds the weights of the best dev-loss evaluation.

    Seeding here covers everything the loop draws (dropout masks, shuffling). The caller seeds
    before building the model, so that initial weights are reproducible too.
    """
    from zhbench.runtime import set_threads

    set_threads(cfg.threads)
    rank, world = dist_info()
    main_rank = rank == 0
    progress = progress and main_rank
    # Dropout draws from the global generator (per rank, so ranks do not share masks); shuffling
    # has its own generator, so evaluations never shift the batch order.
    torch.manual_seed(cfg.seed + rank)
    generator = torch.Generator().manual_seed(cfg.seed)
    batches = make_train_batches(train_features, cfg, generator)
    ddp_model = wrap_model(model)  # what the training step calls; `model` stays the plain module

    steps_per_epoch = len(batches)
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    optimizer, scheduler = make_optimizer(model, cfg, total_steps)

    curves = Curves(curves_dir) if curves_dir is not None and main_rank else None
    result = TrainResult(best_step=0, best_val_loss=math.inf, best_val_acc=0.0, steps=0,
                         epochs_run=0.0, stopped_early=False)
    best_state: dict[str, torch.Tensor] | None = None
    train_step_seconds = valid_seconds = 0.0
    valid_batches = valid_runs = 0
    epoch_seconds: list[float] = []
    step = 0
    start = time.perf_counter()

    log.info("training: %d examples, %d steps/epoch, %d steps total, %d process(es), config %s",
             len(train_features), steps_per_epoch, total_steps, world, asdict(cfg))
    # Log lines go through tqdm.write while the bar is up, so they do not tear the bar apart.
    with logging_redirect_tqdm():
        bar = tqdm(total=total_steps, desc="train", unit="step", disable=not progress, mininterval=1.0)
        model.train()
        done = False
        for epoch in range(cfg.epochs):
            if main_rank:
                log.info("Epoch [%d/%d]", epoch + 1, cfg.epochs)
            epoch_train_seconds = 0.0
            for idx in batches:
                t0 = time.perf_counter()
                batch = train_features.batch(idx, cfg.dynamic_padding)
                logits = ddp_model(batch["input_ids"], batch["attention_mask"])
                loss = F.cross_entropy(logits, batch["labels"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip and cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                epoch_train_seconds += time.perf_counter() - t0
                step += 1
                bar.update(1)

                # Like the seed, the train numbers on the log line are the current batch's.
                n = len(idx)
                loss_sum, correct, count = _sum_over_ranks(loss.item() * n,
                                                           (logits.argmax(dim=1) == batch["labels"]).sum().item(), n)
                train_loss, train_acc = loss_sum / count, correct / count
                row = {"step": step, "train_loss": train_loss, "train_acc": train_acc}

                last = step == total_steps
                if step % cfg.eval_every == 0 or last:
                    val_loss, val_acc, secs, n_batches = _evaluate(model, dev_features, cfg)
                    valid_seconds += secs
                    valid_batches += n_batches
                    valid_runs += 1
                    improved = val_loss < result.best_val_loss
                    if improved:
                        result.best_val_loss, result.best_val_acc, result.best_step = val_loss, val_acc, step
                        # A copy in memory: cheap for mini models, and no half-written file if killed.
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    row.update(val_loss=val_loss, val_acc=val_acc)
                    result.history.append(dict(row))
                    msg = format_iter_line(step, train_loss, train_acc, val_loss, val_acc,
                                           time.perf_counter() - start, improved)
                    if main_rank:
                        log.info(msg)
                    if step - result.best_step >= cfg.patience_steps:
                        log.info("No optimization for %d steps, auto-stopping...", step - result.best_step)
                        result.stopped_early = True
                        done = True
                if curves is not None:
                    curves.log(row)
                if last:
                    done = True
                if done:
                    break
            train_step_seconds += epoch_train_seconds
            # Only full epochs count for the epoch time; a cut-short epoch would understate it.
            if step == steps_per_epoch * (epoch + 1):
                epoch_seconds.append(epoch_train_seconds)
            if done:
                break
        bar.close()
    if curves is not None:
        curves.flush()

    if best_state is not None:
        model.load_state_dict(best_state)
    result.steps = step
    result.epochs_run = step / steps_per_epoch
    step_time = train_step_seconds / max(step, 1)
    result.timing = {
        "device": device_name(),
        "threads": cfg.threads,
        "train_steps": step,
        "train_step_time": step_time,
        # measured when a full epoch ran, else extrapolated from the step time
        "train_epoch_time": (sum(epoch_seconds) / len(epoch_seconds)) if epoch_seconds else step_time * steps_per_epoch,
        "valid_step_time": valid_seconds / max(valid_batches, 1),
        "valid_epoch_time": valid_seconds / max(valid_runs, 1),
        "train_total_time": time.perf_counter() - start,
        "steps_per_second": step / max(train_step_seconds, 1e-9),
    }
    log.info("best dev loss %.4f (acc %.2f%%) at step %d of %d", result.best_val_loss,
             100 * result.best_val_acc, result.best_step, step)
    return result


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
    return str(v) if isinstance(v, int) else f"{v:.6f}"


# --- params ----------------------------------------------------------------------------------------

@dataclass
class BackboneSettings:
    """One backbone's resolved settings: shared defaults with its own overrides applied."""

    size: str
    pretrained: str | None
    overrides: dict
    dropout: float
    train: TrainConfig


def backbone_settings(section: dict, backbone: str, granularity: str, seed: int) -> BackboneSettings:
    """Resolve the params.yaml `backbones:` section for one (backbone, granularity).

    `section[<backbone name>]` may set size, pretrained, overrides, dropout and any `train` key;
    everything else comes from the shared defaults. `seed` is the project-wide seed.
    """
    allowed = section.get("granularities", {}).get(granularity)
    if allowed is None:
        raise KeyError(f"params: backbones.granularities has no {granularity!r} list")
    if backbone not in allowed:
        raise ValueError(f"backbone {backbone!r} is not listed in backbones.granularities.{granularity}: {allowed}")
    own = section.get(backbone) or {}
    unknown = set(own) - {"size", "pretrained", "overrides", "dropout", "train"}
    if unknown:
        raise ValueError(f"params: backbones.{backbone} has unknown keys {sorted(unknown)}")
    train_dict = {**section["train"], **(own.get("train") or {}), "seed": seed}
    return BackboneSettings(
        size=own.get("size", section.get("size", "mini")),
        pretrained=own.get("pretrained", section.get("pretrained")),
        overrides=dict(own.get("overrides") or {}),
        dropout=float(own.get("dropout", section.get("dropout", 0.1))),
        train=TrainConfig.from_dict(train_dict),
    )
