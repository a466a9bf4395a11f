"""What every stage entry point shares: argv conventions, logging, one-line errors."""
from __future__ import annotations

import argparse
import functools
import logging
import sys
from typing import Callable

from zhbench import params as P
from zhbench.runtime import setup_logging

log = logging.getLogger("zhbench.stage")

# Errors that mean "your input or config is wrong": print one clear line, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, RuntimeError)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--log-file", default=None, help="log file for this stage (logs/<stage>/...)")
    return p


def entry_point(fn: Callable[[argparse.Namespace, dict], None], build_parser: Callable[[], argparse.ArgumentParser]):
    """Wrap a stage body: parse argv, set up logging, load params, turn user errors into exit 1."""

    @functools.wraps(fn)
    def main(argv: list[str] | None = None) -> int:
        args = build_parser().parse_args(argv)
        setup_logging(args.log_file)
        try:
            params = P.load(args.params)
            fn(args, params)
        except USER_ERRORS as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            log.error("%s", msg)
            print(f"error: {msg}", file=sys.stderr)
            return 1
        return 0

    return main
