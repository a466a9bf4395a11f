"""Stage build_vocab: a WordLevel tokenizer.json from the training split's tokens (one per granularity)."""
from __future__ import annotations

import sys
from pathlib import Path

from zhbench import params as P
from zhbench import stage
from zhbench.io import atomic_dir, dumps_json
from zhbench.text import GRANULARITIES
from zhbench.text.vocab import build_vocab


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--granularity", required=True, choices=GRANULARITIES,
                   help="token granularity: char (shared by all scratch backbones) or word (jieba)")
    p.add_argument("--data", required=True,
                   help="processed dataset directory (holds <granularity>/train.tsv and labels.txt)")
    p.add_argument("--out", required=True, help="output directory: tokenizer.json and vocab_stats.json")
    return p


def run(args, params):
    cfg = P.section(params, f"backbones.vocab.{args.granularity}")
    train_tsv = Path(args.data) / args.granularity / "train.tsv"
    if not train_tsv.is_file():
        raise FileNotFoundError(f"{train_tsv}: training split not found (run preprocess first)")
    # Only the training split: dev/test tokens must stay unseen ([UNK]) as they would in service.
    tokenizer, stats = build_vocab(train_tsv, args.granularity, min_frequency=int(cfg["min_frequency"]),
                                   max_size=cfg.get("max_size"))
    with atomic_dir(args.out) as tmp:  # tokenizer.json and its stats appear together or not at all
        tokenizer.save(str(tmp / "tokenizer.json"), pretty=True)
        (tmp / "vocab_stats.json").write_text(dumps_json(stats.to_dict()), encoding="utf-8")
    stage.log.info("vocab %s: %d tokens (of %d distinct), train coverage %.2f%%", args.granularity,
                   stats.vocab_size, stats.distinct_tokens, 100 * stats.train_coverage)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
