"""Stage report: regenerate reports/report.md (and report.html, figures) from the metrics files."""
from __future__ import annotations

import sys
from pathlib import Path

from zhbench import provenance
from zhbench import stage
from zhbench.io import write_json, write_text
from zhbench.report import build_reports


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--metrics", default="metrics", help="metrics directory")
    p.add_argument("--references", default="config/references.yaml", help="write-up reference numbers")
    p.add_argument("--out", required=True, help="report markdown to write")
    p.add_argument("--html", default=None,
                   help="self-contained HTML report to write (figures inlined as base64 PNG); must sit beside --out")
    p.add_argument("--provenance", default=None,
                   help="environment provenance JSON to write (versions, device, threads, git commit, params hash); "
                        "also printed in the report")
    return p


def run(args, params):
    out = Path(args.out)
    if args.html and Path(args.html).resolve().parent != out.resolve().parent:
        raise ValueError(f"--html {args.html} must be in the same directory as --out {args.out} "
                         "(both resolve figures/ relative to that directory)")
    prov = None
    if args.provenance:
        prov = provenance.collect(params)
        write_json(args.provenance, prov)
    # the report's own figures go to <report dir>/figures, beside the evaluate stages' confusion matrices
    markdown, page = build_reports(args.metrics, args.references, params, out.parent, prov)
    write_text(out, markdown)
    stage.log.info("wrote %s", out)
    if args.html:
        write_text(args.html, page)
        stage.log.info("wrote %s", args.html)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
