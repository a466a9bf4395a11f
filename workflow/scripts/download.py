"""Stage download: fetch a dataset variant (mirror first, then URL), verify checksums, all or nothing.

With `data.path` set (your own classification data), it takes that directory's train/dev/test files
and class.txt instead, recording each file's sha256."""
from __future__ import annotations

import sys

from zhbench import params as P
from zhbench import stage
from zhbench.data.download import fetch_variant, take_own_files
from zhbench.layout import own_data, own_data_files
from zhbench.data.registry import get_variant


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--variant", help="dataset variant name (see zhbench.data.registry)")
    p.add_argument("--variant-key", help="params key holding the variant name, e.g. data.variant")
    p.add_argument("--out", required=True, help="output directory, e.g. data/raw/thucnews10")
    return p


def run(args, params):
    if args.variant is None and own_data(params) is not None:
        manifest = take_own_files(own_data_files(params), args.out)
        stage.log.info("own data %s: %d files into %s", own_data(params)["path"], len(manifest["files"]), args.out)
        return
    name = args.variant or P.section(params, args.variant_key or "data.variant")
    manifest = fetch_variant(get_variant(name), args.out)
    stage.log.info("%s: %d files verified into %s", name, len(manifest["files"]), args.out)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())
