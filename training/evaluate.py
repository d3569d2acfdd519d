"""Evaluate reconstruction methods on the held-out HDR references.

Thin wrapper over :mod:`ldr2hdr.evaluation.harness` (the same code as ``ldr2hdr eval``)::

    python training/evaluate.py --quick                 # a few minutes on 2 CPU cores
    python training/evaluate.py                         # standard protocol (3 DoRF curves per image)
    python training/evaluate.py --full --out runs/eval-full
    python training/evaluate.py --methods srgb-clip,ldr2hdr-learned some/folder/of/exrs

Writes ``results.json`` (per-sample rows + aggregates) and ``results.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ldr2hdr.evaluation.harness import add_eval_arguments, run_eval


def main(argv: list[str] | None = None) -> int:
    parser = add_eval_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_eval(args)


if __name__ == "__main__":
    sys.exit(main())
