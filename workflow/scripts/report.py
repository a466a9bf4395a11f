"""Stage report: regenerate reports/report.md from the metrics files."""
from __future__ import annotations

import sys

from zhbench import stage
from zhbench import provenance
from zhbench.io import write_json, write_text
from zhbench.report import build_report


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--metrics", default="metrics", help="metrics directory")
    p.add_argument("--references", default="config/references.yaml", help="write-up reference numbers")
    p.add_argument("--out", required=True, help="report markdown to write")
    p.add_argument("--provenance", required=True,
                   help="environment provenance JSON to write (versions, device, threads, git commit, params hash)")
    return p


def run(args, params):
    prov = provenance.collect(params)
    write_json(args.provenance, prov)
    write_text(args.out, build_report(args.metrics, args.references, params, prov))
    stage.log.info("wrote %s", args.out)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
