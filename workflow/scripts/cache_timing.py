"""Stage cache_timing: one backbone fine-tuned twice on 2,000 titles, features built vs cached."""
from __future__ import annotations

import sys
from pathlib import Path

from zhbench import params as P
from zhbench import stage
from zhbench.cache_timing import CacheTimingConfig, run_twice
from zhbench.data.thucnews import read_labels
from zhbench.evaluate import write_timing
from zhbench.io import write_json
from zhbench.runtime import seed_everything, set_threads
from zhbench.devices import device_name


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--backbone", required=True, help="backbone to fine-tune (one of params cache_timing.backbones)")
    p.add_argument("--data", required=True, help="processed dataset directory (labels.txt, char/{train,dev}.tsv)")
    p.add_argument("--vocab", required=True, help="char vocabulary directory holding tokenizer.json")
    p.add_argument("--metrics", required=True, help="quality metrics JSON (acc, f1, acc_and_f1)")
    p.add_argument("--timing", required=True, help="timing JSON: training/evaluation seconds, first vs cached")
    return p


def run(args, params):
    from zhbench.encoders import training_encoder
    from zhbench.models.backbones import SequenceClassifier, build_backbone

    section = dict(P.section(params, "cache_timing"))
    if args.backbone not in section.pop("backbones"):
        raise ValueError(f"backbone {args.backbone!r} is not listed in params cache_timing.backbones")
    cfg = CacheTimingConfig(**section)
    seed = int(P.section(params, "seed"))
    seed_everything(seed)
    set_threads(cfg.threads)
    data = Path(args.data)
    labels = read_labels(data / "labels.txt")
    # The backbone as the char backbone stages build it: its size and, where set, its pretrained
    # checkpoint with that checkpoint's tokenizer (the write-up timed pretrained BERT and RoBERTa).
    backbones = P.section(params, "backbones")
    size = P.backbone_option(backbones, args.backbone, "char", "size", "mini")
    pretrained = P.backbone_option(backbones, args.backbone, "char", "pretrained")
    if not pretrained and not (Path(args.vocab) / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{Path(args.vocab) / 'tokenizer.json'}: no vocabulary; run the build_vocab stage first")
    encoder = training_encoder(args.backbone, "char", pretrained, args.vocab)

    def build_model():
        backbone = build_backbone(args.backbone, size=size, vocab_size=encoder.vocab_size, max_positions=cfg.max_len,
                                  pretrained=pretrained)
        return SequenceClassifier(backbone, args.backbone, len(labels))

    quality, timing = run_twice(build_model, encoder, encoder.input_file(data, "train"), encoder.input_file(data, "dev"),
                                labels, cfg, "char", seed)
    write_json(args.metrics, {"backbone": args.backbone, "profile": params.get("profile", "default"),
                              "variant": P.section(params, "data.variant"), **quality})
    write_timing(args.timing, {**timing, "device": device_name(), "threads": cfg.threads})


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
