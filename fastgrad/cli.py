"""The ``fastgrad`` command.

``fastgrad check`` checks the gradients of every built-in activation, loss and layer in
float64 and float32 and prints one table; it exits 0 when all pass, 1 when any fails and
2 for usage errors.
"""

import argparse
import json
import sys
import time

from . import __version__
from ._selfcheck import builtin_checks
from ._warmup import warmup

COLUMNS = [("object", 44), ("param", 5), ("shape", 12), ("dtype", 7), ("method", 10),
           ("rel. error", 10), ("worst element", 26), ("time", 8), ("", 4)]


def _format_row(row):
    cells = [row.target, row.parameter, "x".join(map(str, row.shape)), row.dtype, row.method,
             f"{row.relative_error:.2e}", row.worst, f"{row.seconds * 1e3:.1f}ms",
             "ok" if row.passed else "FAIL"]
    return "  ".join(str(cell)[:width].ljust(width) for cell, (_, width) in zip(cells, COLUMNS,
                                                                                 strict=True))


def _parser():
    parser = argparse.ArgumentParser(prog="fastgrad", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"fastgrad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check every built-in layer, activation and loss")
    check.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--method", default="auto", choices=["auto", "structured", "exhaustive"])
    check.add_argument("--wide", type=int, metavar="N",
                       help="also check a wide N x N FullyConnected layer")
    check.add_argument("--samples", type=int, default=8, help="samples per check (default 8)")
    check.add_argument("--json", metavar="FILE", help="write the results as JSON")
    check.add_argument("--quiet", action="store_true", help="print only the summary")
    return parser


def _check(args):
    for name in ("wide", "samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(_usage_error(f"--{name}: expected a positive integer, got {value}"))
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    started = time.perf_counter()
    compile_s = warmup(dtypes)
    rows = []
    if not args.quiet:
        print("  ".join(title.ljust(width) for title, width in COLUMNS).rstrip())
    for row in builtin_checks(dtypes, seed=args.seed, method=args.method, wide=args.wide,
                              n_samples=args.samples):
        rows.append(row)
        if not args.quiet or not row.passed:
            print(_format_row(row).rstrip(), flush=True)
    n_failed = sum(not row.passed for row in rows)
    total = time.perf_counter() - started
    print(f"{len(rows) - n_failed} passed, {n_failed} failed "
          f"({total:.2f} s, of which {compile_s:.2f} s loading/compiling kernels)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"fastgrad": __version__, "passed": n_failed == 0,
                       "results": [row.as_dict() for row in rows]}, handle, indent=2)
    return 0 if n_failed == 0 else 1


def _usage_error(message):
    print(f"fastgrad: error: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    """Entry point of the ``fastgrad`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "check":
        return _check(args)
    return 2  # pragma: no cover (argparse requires a command)


if __name__ == "__main__":
    sys.exit(main())
