"""Stage train_backbone: fine-tune one backbone (scratch mini or pretrained) on one granularity.

With `--workers N` > 1 the stage starts N workers of itself through torch.distributed.run; each joins
a DistributedDataParallel group (gloo on CPU, nccl on GPU) and only rank 0 writes anything. Writes the checkpoint (save_pretrained layout + head + zhbench.json + tokenizer.json), the training
curves (train.csv, eval.csv) and the measured times; quality metrics come from evaluate_backbone.
"""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import torch

from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_labels
from zhbench.evaluate import write_timing
from zhbench.features import load_features
from zhbench.io import atomic_dir
from zhbench.runtime import seed_everything, set_threads
from zhbench.text import GRANULARITIES
from zhbench.classify import backbone_settings, dev_evaluator
from zhbench.encoders import training_encoder
from zhbench.fit import fit


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--workers", type=int, default=1,
                   help="DDP worker processes (backbones.nproc_per_node); 1 = this process, no torchrun")
    p.add_argument("--backbone", required=True, help="backbone name (one of zhbench.models.backbones.BACKBONES)")
    p.add_argument("--granularity", required=True, choices=GRANULARITIES, help="token granularity of the input")
    p.add_argument("--data", required=True, help="processed dataset directory (labels.txt, <granularity>/{train,dev}.tsv)")
    p.add_argument("--vocab", required=True,
                   help="project vocabulary dir holding tokenizer.json (build_vocab output); a backbone with a "
                        "pretrained checkpoint encodes with the checkpoint's own tokenizer instead")
    p.add_argument("--pretrained", help="start from this checkpoint dir instead of the params' `pretrained:` "
                                         "(the pretrain stage's output, for the pretrained-here rows)")
    p.add_argument("--cache", required=True, help="feature cache directory (safetensors files keyed by input hashes)")
    p.add_argument("--out", required=True, help="checkpoint directory to write (replaced atomically)")
    p.add_argument("--curves", required=True, help="directory for training curves train.csv / eval.csv (DVC plots)")
    p.add_argument("--timing", required=True, help="JSON of measured times (device, step/epoch times, feature load)")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bar")
    return p


def init_distributed() -> int:
    """Join the process group torchrun describes in the environment; returns this process's rank."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend=backend)
    return dist.get_rank()


def run(args, params):
    status = stage.launch_workers(args.workers)
    if status is not None:
        if status != 0:
            raise RuntimeError(f"{args.workers} DDP workers failed (exit status {status}); see their log above")
        return
    rank = init_distributed()
    try:
        train_and_save(args, params, rank)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def train_and_save(args, params, rank: int):
    from zhbench.models.backbones import MINI_POSITIONS, SequenceClassifier, build_backbone, write_classifier
    from zhbench.models.checkpoint_tokenizer import check_vocab_fits

    seed = int(P.section(params, "seed"))
    settings = backbone_settings(P.section(params, "backbones"), args.backbone, args.granularity, seed)
    if args.pretrained:
        settings.pretrained = args.pretrained
    cfg = settings.train
    seed_everything(seed)
    set_threads(cfg.threads)

    data = Path(args.data)
    labels = read_labels(data / "labels.txt")
    # A pretrained checkpoint encodes with its own tokenizer; from scratch, the project vocabulary.
    encoder = training_encoder(args.backbone, args.granularity, settings.pretrained, args.vocab)
    # Seed again right before building, so initial weights do not depend on what ran before.
    torch.manual_seed(seed)
    backbone = build_backbone(args.backbone, size=settings.size, vocab_size=encoder.vocab_size,
                              # from scratch, MINI_POSITIONS positions at least; a checkpoint brings its own
                              max_positions=settings.max_len if settings.pretrained else max(MINI_POSITIONS, settings.max_len),
                              pretrained=settings.pretrained,
                              overrides=settings.overrides)
    embeddings = backbone.get_input_embeddings().num_embeddings
    if encoder.vocab_size > embeddings:  # one clear error, before any training
        raise ValueError(f"{args.backbone}: the tokenizer has {encoder.vocab_size} entries, the checkpoint embeds "
                         f"{embeddings}: they do not belong together")
    if settings.pretrained and encoder.kind == "checkpoint":
        check_vocab_fits(backbone.config, encoder.tokenizer)
    loaded = {}
    for split in ("train", "dev"):
        loaded[split] = load_features(encoder.input_file(data, split), encoder, settings.max_len,
                                      args.granularity, len(labels), args.cache)
    train_f, dev_f = loaded["train"][0], loaded["dev"][0]
    vocab_size = encoder.vocab_size
    model = SequenceClassifier(backbone, args.backbone, len(labels), settings.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    stage.log.info("%s/%s: %s, %.2fM parameters, vocab %d", args.backbone, args.granularity, settings.size,
                   n_params / 1e6, vocab_size)

    result = fit(model, train_f, cfg, evaluate=dev_evaluator(dev_f, cfg), curves_dir=args.curves,
                 progress=not args.no_progress, desc=f"train {args.granularity}/{args.backbone}")
    if rank != 0:  # every rank ends with the same weights; one checkpoint is written
        return

    extra = {
        "backbone": args.backbone, "granularity": args.granularity, "labels": labels, "max_len": settings.max_len,
        "size": settings.size, "pretrained": settings.pretrained, "dropout": settings.dropout,
        "train": asdict(cfg), "best_step": result.best_step, "steps": result.steps,
        "stopped_early": result.stopped_early, "parameters": n_params,
    }
    out = Path(args.out)
    # The model and its tokenizer go into one staging directory, renamed once: a killed stage never
    # leaves a checkpoint without the tokenizer it was trained with.
    with atomic_dir(out) as tmp:
        extra["encoder"] = encoder.save(tmp)
        write_classifier(model.cpu(), tmp, extra)

    write_timing(args.timing, {
        **result.timing,
        "feature_load_seconds": {s: info.seconds for s, (_, info) in loaded.items()},
        "feature_cache_hit": {s: info.cache_hit for s, (_, info) in loaded.items()},
        "parameters": n_params,
    })
    stage.log.info("saved %s (best dev loss %.4f at step %d)", out, result.best_val_loss, result.best_step)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
