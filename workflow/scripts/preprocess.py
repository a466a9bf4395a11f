"""Stage preprocess: validate title<TAB>label rows, write char/word token files and dataset stats."""
from __future__ import annotations

import sys

from zhbench import params as P
from zhbench import stage
from zhbench.io import write_json
from zhbench.layout import own_data, task
from zhbench.preprocess import PreprocessConfig, load_stopwords, preprocess


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--raw", required=True, help="raw dataset directory (class/train/dev/test .txt)")
    p.add_argument("--out", required=True, help="processed output directory")
    p.add_argument("--stats", required=True, help="dataset statistics JSON to write")
    p.add_argument("--stopwords", default="config/stopwords.txt", help="stop-word list for word granularity")
    return p


def run(args, params):
    pre = P.section(params, "preprocess")
    own = own_data(params)
    cfg = PreprocessConfig(on_bad_row=pre["on_bad_row"], remove_stopwords=pre["remove_stopwords"],
                           max_rows=P.section(params, "data.max_rows"),
                           own_data=None if own is None else {**own, "task": task(params)},
                           seed=int(P.section(params, "seed")))
    stopwords = load_stopwords(args.stopwords) if cfg.remove_stopwords else frozenset()
    stats = preprocess(args.raw, args.out, cfg, stopwords)
    stats |= {"variant": "own data" if own else P.section(params, "data.variant"),
              "profile": params.get("profile", "default")}
    write_json(args.stats, stats)
    stage.log.info("preprocessed %s", {s: v["rows"] for s, v in stats["splits"].items()})


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
