"""Stage corpus: the deduplicated, decontaminated pretraining text (train.txt, heldout.txt) and its stats."""
from __future__ import annotations

import sys
import time

from zhbench import stage
from zhbench.data.corpus import CorpusParams, build_corpus, write_corpus


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--raw", required=True, help="raw-data root holding corpus/, thucnews10/, cluener/, lcqmc/, pd1998/")
    p.add_argument("--out", required=True, help="output directory for train.txt and heldout.txt")
    p.add_argument("--stats", required=True, help="corpus statistics JSON to write")
    return p


def run(args, params):
    start = time.perf_counter()
    corpus = build_corpus(args.raw, CorpusParams.from_params(params))
    write_corpus(corpus, args.out, args.stats)
    total = corpus.stats["total"]
    stage.log.info("corpus: train %s, heldout %s, in %.1f s", total["train"], total["heldout"],
                   time.perf_counter() - start)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
