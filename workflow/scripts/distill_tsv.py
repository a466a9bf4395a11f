"""Stage distill_tsv: the teacher's logits over train/dev/test as {split}_distill.tsv (see zhbench.distill),
and over the transfer set (noisy copies of the train titles, zhbench.transfer_set) as transfer_distill.tsv.

Rows: tokens<TAB>gold_label_id<TAB>logit_0 ... logit_{C-1} ("%.6f"), no header, in split order.
Reused by every student (train_student). Also writes a small deterministic summary JSON
(rows and teacher accuracy per split).
"""
from __future__ import annotations

import sys
from pathlib import Path

from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_labels
from zhbench.io import write_json
from zhbench.runtime import seed_everything, set_threads

SPLITS = ("train", "dev", "test")


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--teacher", required=True, help="trained teacher checkpoint dir (save_classifier layout + tokenizer.json)")
    p.add_argument("--data", required=True, help="processed dataset dir (labels.txt, <granularity>/{train,dev,test}.tsv)")
    p.add_argument("--granularity", required=True, help="token granularity (char|word) of the teacher")
    p.add_argument("--out", required=True, help="directory to write {train,dev,test}_distill.tsv into")
    p.add_argument("--summary", required=True, help="JSON: rows and teacher accuracy per split")
    p.add_argument("--stopwords", default="config/stopwords.txt",
                   help="stop-word list, used for the transfer set's word tokens when preprocess.remove_stopwords")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run(args, params):
    from zhbench.distill import write_distill_tsv, write_transfer_tsv
    from zhbench.preprocess import load_stopwords
    from zhbench.transfer_set import TransferConfig

    cfg = P.section(params, "distill")
    transfer = TransferConfig.from_dict(cfg.get("transfer"))
    seed = int(P.section(params, "seed"))
    seed_everything(seed)
    set_threads(int(cfg.get("threads", 1)))
    data, out = Path(args.data), Path(args.out)
    labels = read_labels(data / "labels.txt")
    summary = write_distill_tsv(
        args.teacher, data, SPLITS, {s: out / f"{s}_distill.tsv" for s in SPLITS}, labels,
        batch_size=int(cfg.get("teacher_batch_size", 128)), progress=not args.no_progress)
    stopwords = load_stopwords(args.stopwords) if P.section(params, "preprocess")["remove_stopwords"] else frozenset()
    transfer_summary = write_transfer_tsv(
        args.teacher, data, out / "transfer_distill.tsv", labels, transfer, seed, stopwords,
        batch_size=int(cfg.get("teacher_batch_size", 128)), progress=not args.no_progress)
    write_json(args.summary, {"teacher": Path(args.teacher).name, "granularity": args.granularity,
                              "labels": labels, "splits": summary, "transfer": transfer_summary,
                              "logit_format": "%.6f", "header": False})


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
