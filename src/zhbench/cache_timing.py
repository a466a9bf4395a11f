"""Cached vs uncached feature loading, measured the way the write-up did (BERT vs RoBERTa, 2,000
samples): the same fine-tuning run twice, first building the tokenised features, then loading them
from the cache. Quality (acc, F1, acc_and_f1) must be identical across the two runs; the times are
what differs, and go to the timing file.
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from zhbench.evaluate import classification_report
from zhbench.features import load_features
from zhbench.preprocess import subsample
from zhbench.classify import predict
from zhbench.fit import FitSettings, fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheTimingConfig:
    samples: int = 2000          # training and evaluation samples each, as in the write-up
    max_len: int = 128           # the write-up's max_seq_length
    batch_size: int = 16
    lr: float = 1e-3             # from scratch; the write-up fine-tuned pretrained models at 5e-5
    epochs: int = 1
    threads: int = 1


def _subset_tsv(src: Path, dest: Path, n: int) -> Path:
    rows = src.read_text(encoding="utf-8").splitlines(keepends=True)
    dest.write_text("".join(subsample(rows, n)), encoding="utf-8")
    return dest


def run_twice(build_model, encoder, train_tsv: Path, eval_tsv: Path, labels: list[str],
              cfg: CacheTimingConfig, granularity: str, seed: int) -> tuple[dict, dict]:
    """(quality, timing) of the first (features built) and the cached run; quality of both must match."""
    quality, timing = {}, {}
    with tempfile.TemporaryDirectory(prefix="zhbench-cache-") as tmp:
        tmp = Path(tmp)
        train_file = _subset_tsv(train_tsv, tmp / "train.tsv", cfg.samples)
        eval_file = _subset_tsv(eval_tsv, tmp / "eval.tsv", cfg.samples)
        cache = tmp / "features"  # empty before the first run: it builds every feature
        settings = FitSettings(batch_size=cfg.batch_size, lr=cfg.lr, epochs=cfg.epochs, seed=seed, threads=cfg.threads)
        for phase in ("first", "cached"):
            start = time.perf_counter()
            train_f, train_info = load_features(train_file, encoder, cfg.max_len, granularity, len(labels), cache)
            torch.manual_seed(seed)
            model = build_model()
            result = fit(model, train_f, settings, progress=False)
            train_seconds = time.perf_counter() - start
            start = time.perf_counter()
            eval_f, eval_info = load_features(eval_file, encoder, cfg.max_len, granularity, len(labels), cache)
            logits, loss = predict(model, eval_f, batch_size=cfg.batch_size)
            eval_seconds = time.perf_counter() - start
            report = classification_report(eval_f.labels.tolist(), logits.argmax(-1).tolist(), labels, loss)
            acc, f1 = report["accuracy"], report["macro"]["f1"]
            quality[phase] = {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2, "loss": loss,
                              "train_samples": len(train_f), "eval_samples": len(eval_f), "steps": result.steps}
            timing[phase] = {"training_seconds": train_seconds, "evaluation_seconds": eval_seconds,
                             "train_feature_seconds": train_info.seconds, "eval_feature_seconds": eval_info.seconds,
                             "cache_hit": train_info.cache_hit and eval_info.cache_hit}
            log.info("%s run: training %.2f s, evaluation %.2f s, acc %.4f", phase, train_seconds, eval_seconds, acc)
    if quality["first"] != quality["cached"]:
        raise RuntimeError(f"cached features changed the results: {quality['first']} vs {quality['cached']}")
    if timing["first"]["cache_hit"] or not timing["cached"]["cache_hit"]:
        raise RuntimeError(f"expected a cold first run and a cache hit after it, got {timing}")
    return quality["first"], timing
