"""Training-path benchmarks, measured side by side in one run (the machine is noisy: ratios, not
absolute times, are the result). Prints:

  (a) our training step (zhbench.fit.fit) vs a plain transformers forward/backward loop on the
      same model and batches — overhead ratio, target <= 1.10;
  (b) dynamic padding with length bucketing vs fixed pad 32 — speed ratio, target >= 1.3x on the
      news titles, dev accuracy within 0.5 point;
  (c) cached vs uncached feature load of the training split — target >= 5x.

    python benchmarks/training.py --data data/processed/thucnews10 --vocab models/thucnews10/vocab/char
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from zhbench.data.thucnews import read_labels
from zhbench.features import ShuffledBatches, load_features
from zhbench.models.backbones import SequenceClassifier, build_backbone
from zhbench.classify import predict
from zhbench.fit import FitSettings, fit, make_optimizer


def build(backbone: str, vocab_size: int, num_labels: int, seed: int):
    torch.manual_seed(seed)
    return SequenceClassifier(build_backbone(backbone, "mini", vocab_size=vocab_size, max_positions=128),
                              backbone, num_labels)


def plain_loop_seconds(model, feats, cfg: FitSettings, steps: int) -> float:
    """The baseline: forward, cross-entropy, backward, AdamW step — nothing else."""
    optimizer, _ = make_optimizer(model, cfg, steps)
    batches = iter(ShuffledBatches(len(feats), cfg.batch_size, torch.Generator().manual_seed(cfg.seed)))
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        batch = feats.batch(next(batches))
        loss = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]).logits, batch["labels"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def ours_seconds(model, feats, cfg: FitSettings, steps: int) -> float:
    """zhbench.fit without evaluation: its step time, bookkeeping included."""
    run_cfg = FitSettings(**{**cfg.__dict__, "max_steps": steps, "epochs": 10**6})
    return fit(model, feats, run_cfg, progress=False).timing["train_total_time"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/processed/thucnews10", help="processed dataset dir")
    p.add_argument("--vocab", default="models/thucnews10/vocab/char", help="dir holding tokenizer.json")
    p.add_argument("--backbone", default="bert", help="mini backbone to time")
    p.add_argument("--steps", type=int, default=60, help="optimizer steps per arm of (a)")
    p.add_argument("--epochs", type=float, default=1.0, help="epochs per arm of (b)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--skip-accuracy", action="store_true", help="(b): time 60 steps only, no full training")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    data, tok = Path(args.data), Path(args.vocab) / "tokenizer.json"
    labels = read_labels(data / "labels.txt")
    vocab_size = Tokenizer.from_file(str(tok)).get_vocab_size()
    train_tsv, dev_tsv = data / "char" / "train.tsv", data / "char" / "dev.tsv"

    # (c) cached vs uncached feature load, best of 3 each, interleaved.
    with tempfile.TemporaryDirectory() as cache:
        load_features(train_tsv, tok, 32, "char", len(labels), cache)  # fill the cache
        uncached, cached = [], []
        for _ in range(3):
            uncached.append(load_features(train_tsv, tok, 32, "char", len(labels))[1].seconds)
            info = load_features(train_tsv, tok, 32, "char", len(labels), cache)[1]
            assert info.cache_hit
            cached.append(info.seconds)
    feats, _ = load_features(train_tsv, tok, 32, "char", len(labels))
    dev, _ = load_features(dev_tsv, tok, 32, "char", len(labels))

    # (a) ours vs plain loop, fixed padding, same batches; ABAB, best of 2.
    cfg = FitSettings(batch_size=64, lr=1e-3, threads=args.threads, grad_clip=1.0)
    ours, plain = [], []
    for _ in range(2):
        plain.append(plain_loop_seconds(build(args.backbone, vocab_size, len(labels), 1), feats, cfg, args.steps))
        ours.append(ours_seconds(build(args.backbone, vocab_size, len(labels), 1), feats, cfg, args.steps))

    # (b) dynamic padding + bucketing vs fixed pad 32: the same training, timed and scored on dev.
    arms = {}
    for dynamic in (False, True):
        steps = args.steps if args.skip_accuracy else None
        run_cfg = FitSettings(batch_size=64, lr=1e-3, threads=args.threads, epochs=max(1, int(args.epochs)),
                              dynamic_padding=dynamic, max_steps=steps)
        model = build(args.backbone, vocab_size, len(labels), 2)
        result = fit(model, feats, run_cfg, progress=False)
        logits, _ = predict(model, dev, batch_size=256, dynamic_padding=dynamic)
        arms[dynamic] = (result.timing["steps_per_second"], float((logits.argmax(-1) == dev.labels).float().mean()))

    print(f"backbone {args.backbone} (mini), threads {args.threads}, {len(feats)} training titles, "
          f"device {result.timing['device']}")
    print(f"(a) training step overhead: ours {min(ours) / args.steps * 1000:.1f} ms/step vs plain loop "
          f"{min(plain) / args.steps * 1000:.1f} ms/step -> ratio {min(ours) / min(plain):.3f} (target <= 1.10)")
    (fixed_sps, fixed_acc), (dyn_sps, dyn_acc) = arms[False], arms[True]
    acc_note = "" if args.skip_accuracy else (
        f"; dev acc fixed {100 * fixed_acc:.2f} vs dynamic {100 * dyn_acc:.2f} "
        f"(delta {100 * (dyn_acc - fixed_acc):+.2f} points, target within 0.5)")
    print(f"(b) dynamic padding: {dyn_sps:.2f} vs fixed pad 32 {fixed_sps:.2f} steps/s -> speed-up "
          f"{dyn_sps / fixed_sps:.2f}x (target >= 1.3x){acc_note}")
    print(f"(c) feature load: uncached {min(uncached) * 1000:.1f} ms vs cached {min(cached) * 1000:.1f} ms -> "
          f"{min(uncached) / min(cached):.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
