"""The ``fastgrad`` command.

``fastgrad check`` checks the gradients of every built-in activation, loss, layer and a small
model in float64 and float32 (or a user's own check given as ``module.py:function``) and
prints one table. Exit code 0 when all pass, 1 when any fails, 2 for usage errors.
``fastgrad bench`` times the same kinds of cases against the one-element-at-a-time loop and,
when installed, SciPy's and PyTorch's checkers.
"""

import argparse
import json
import sys
import time

import numpy as np

from . import __version__
from ._selfcheck import UserCheckError, builtin_checks, load_user_check, user_checks
from ._warmup import warmup

CHECK_COLUMNS = [("object", 44), ("param", 5), ("shape", 11), ("dtype", 7), ("method", 10),
                 ("rel. error", 10), ("worst element", 26), ("time", 9), ("", 4)]


def _cells(row):
    return [row.target, row.parameter, "x".join(map(str, row.shape)), row.dtype, row.method,
            f"{row.relative_error:.2e}", row.worst_text(), f"{row.seconds * 1e3:.1f}ms",
            "ok" if row.passed else "FAIL"]


def _line(cells, columns):
    return "  ".join(str(cell)[:width].ljust(width)
                     for cell, (_, width) in zip(cells, columns, strict=True)).rstrip()


def _parser():
    parser = argparse.ArgumentParser(prog="fastgrad", description=__doc__.split("\n\n")[1])
    parser.add_argument("--version", action="version", version=f"fastgrad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check", help="check gradients: every built-in object, or your own check function",
        description="Without TARGET, check every built-in activation, loss, layer and a small "
                    "model. With TARGET (module.py:function or package.module:function), run "
                    "your function: it returns (fn, grad, x[, dLdf]) or (model, X, Y).")
    check.add_argument("target", nargs="?", help="your check, as module.py:function")
    check.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--method", default="auto",
                       choices=["auto", "structured", "exhaustive", "model"])
    check.add_argument("--wide", type=int, metavar="N",
                       help="also check a wide N x N FullyConnected layer")
    check.add_argument("--activation", default="tanh", help="activation of --wide (tanh)")
    check.add_argument("--samples", type=int, default=8, help="samples per check (default 8)")
    check.add_argument("--json", metavar="FILE", help="write the results as JSON")
    check.add_argument("--plot", metavar="FILE.png", help="draw where the errors are")
    check.add_argument("--quiet", action="store_true", help="print failures and the summary")
    bench = commands.add_parser("bench", help="time fastgrad against the loop and the peers")
    bench.add_argument("--quick", action="store_true", help="small cases, under a minute")
    bench.add_argument("--budget", type=float, default=None, metavar="S",
                       help="seconds a baseline may run before it is extrapolated")
    bench.add_argument("--no-peers", action="store_true", help="skip SciPy and PyTorch")
    bench.add_argument("--json", metavar="FILE", help="write the timings as JSON")
    bench.add_argument("--plot", metavar="FILE.png", help="time against size, log-log")
    return parser


class UsageError(Exception):
    pass


def _positive(args, *names):
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise UsageError(f"--{name}: expected a positive number, got {value}")


def _check(args):
    _positive(args, "wide", "samples")
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    progress = None if sys.stderr.isatty() else False
    started = time.perf_counter()
    compile_s = warmup(dtypes)
    if args.target:
        function = load_user_check(args.target)
        module_part, _, function_name = args.target.rpartition(":")
        label = f"{module_part.replace(chr(92), '/').rsplit('/', 1)[-1]}:{function_name}"
        rows_iter = user_checks(function, name=label, method=args.method,
                                seed=args.seed, progress=progress)
    else:
        rows_iter = builtin_checks(dtypes, seed=args.seed, method=args.method, wide=args.wide,
                                   n_samples=args.samples, wide_activation=args.activation,
                                   progress=progress)
    if not args.quiet:
        print(_line([title for title, _ in CHECK_COLUMNS], CHECK_COLUMNS))
    rows = []
    for row in rows_iter:
        rows.append(row)
        if not args.quiet or not row.passed:
            print(_line(_cells(row), CHECK_COLUMNS), flush=True)
    failed = [row for row in rows if not row.passed]
    for row in failed:
        worst = row.worst
        if worst is not None:
            print(f"FAILED {row.target} {row.parameter}: element {worst.index}: numerical "
                  f"{worst.numerical:.10g}, analytic {worst.analytic:.10g}, |error| "
                  f"{worst.abs_error:.3g} > tolerance {worst.tolerance:.3g}")
    total = time.perf_counter() - started
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed "
          f"({total:.2f} s, of which {compile_s:.2f} s loading/compiling kernels)")
    if args.json:
        _write_json(args.json, {"fastgrad": __version__, "command": "check",
                                "passed": not failed,
                                "results": [row.as_dict() for row in rows]})
    if args.plot:
        from ._plot import plot_check

        plot_check(rows, args.plot)
        print(f"plot written to {args.plot}")
    return 0 if not failed else 1


def _write_json(path, payload):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, default=_json_default)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _bench(args):
    from ._bench_cli import run_bench

    _positive(args, "budget")
    return run_bench(quick=args.quick, budget_s=args.budget, peers=not args.no_peers,
                     json_path=args.json, plot_path=args.plot, write_json=_write_json)


def main(argv=None):
    """Entry point of the ``fastgrad`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.plot:
            from ._plot import _pyplot

            _pyplot()  # fail before the work, not after it
        return _check(args) if args.command == "check" else _bench(args)
    except (UsageError, UserCheckError) as error:
        print(f"fastgrad {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from ._plot import PlotUnavailable

        if isinstance(error, PlotUnavailable):
            print(f"fastgrad {args.command}: error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
