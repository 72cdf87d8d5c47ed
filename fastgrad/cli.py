"""The fastgrad command: ``fastgrad check`` and ``fastgrad bench``."""

import argparse
import json
import sys
import time

import numpy as np

from ._version import __version__

#: Exit codes of ``fastgrad check`` (and the meaning shown in ``--help``).
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
EXIT_CODES = f"""\
exit codes:
  {EXIT_PASSED}  every check passed
  {EXIT_FAILED}  a gradient is wrong: at least one check failed
  {EXIT_USAGE}  usage or input error, or your function raised (the message says which)
  {EXIT_INCONCLUSIVE}  nothing failed, but at least one check could not decide
"""

METHODS = ["auto", "structured", "exhaustive", "colored", "directional", "model"]

METHOD_HELP = """\
how to difference: auto (default) picks structured for fastgrad's own functions, else the
cheapest complete method within its budget of evaluations (a count, the same on any
machine); structured (fastgrad's own activations,
losses and layers: a kernel recomputes only what each element changes); exhaustive (every
element, any function); colored (black boxes with a sparse Jacobian, e.g. dense layers:
a group of elements per call); directional (huge black boxes: random directions, then the
disagreeing ones narrowed down to the wrong elements); model (whole models of dense layers:
only what each parameter changes is recomputed). For a model, only model and exhaustive
apply; other choices use auto."""

#: Columns of the table: title and width. The object's name is never cut.
CHECK_COLUMNS = [("object", 48), ("param", 5), ("shape", 9), ("dtype", 7), ("method", 11),
                 ("rel. error", 10), ("max |err|", 9), ("worst element (|err|, x tolerance)", 34),
                 ("time", 8), ("verdict", 7)]

VERDICT_MARK = {"passed": "ok", "failed": "FAIL", "inconclusive": "INCONCLUSIVE"}


def _cells(row):
    return [row.target, row.parameter, "x".join(map(str, row.shape)), row.dtype, row.method,
            f"{row.relative_error:.2e}", f"{row.max_abs_error:.2e}", row.worst_text(),
            f"{row.seconds * 1e3:.1f}ms", VERDICT_MARK.get(row.verdict, row.verdict)]


def _line(cells, columns):
    return "  ".join(str(cell).ljust(width)
                     for cell, (_, width) in zip(cells, columns, strict=True)).rstrip()


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' paragraphs and the exit-code table as written."""


def _parser():
    parser = argparse.ArgumentParser(
        prog="fastgrad", formatter_class=_Formatter,
        description="Fast numerical gradient checking for NumPy neural-network code.\n\n"
                    "fastgrad check    check fastgrad's own objects, or your check function\n"
                    "fastgrad bench    time fastgrad against the one-element-at-a-time loop",
        epilog="Run 'fastgrad check --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"fastgrad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", formatter_class=_Formatter, epilog=EXIT_CODES,
        help="check gradients: every built-in object, or your own check function",
        description="Without TARGET, check every built-in activation, loss, dense layer and a\n"
                    "small model, in float64 and float32. With TARGET, run your function: it\n"
                    "takes no arguments and returns (fn, grad, x) or (fn, grad, x, dLdf) for\n"
                    "check_gradients, or (model, X, Y) for a configured model.\n\n"
                    "The first run compiles the Numba kernels the check needs (a line says\n"
                    "so); they are cached for later runs.")
    check.add_argument("target", nargs="?", metavar="TARGET",
                       help="your check function, as path/to/module.py:function or "
                            "package.module:function")
    check.add_argument("--dtype", choices=["float64", "float32", "both"], default="both",
                       help="dtype(s) of the built-in checks (default: both); your own check "
                            "uses the dtype of the arrays it returns")
    check.add_argument("--seed", type=int, default=0,
                       help="seed of the random inputs and of the random choices of the "
                            "methods (default: 0)")
    check.add_argument("--method", default="auto", choices=METHODS, help=METHOD_HELP)
    check.add_argument("--wide", type=int, metavar="N",
                       help="also check a wide N x N FullyConnected layer (built-in check)")
    check.add_argument("--activation", metavar="NAME",
                       help="activation of the --wide layer, e.g. relu or softmax "
                            "(default: tanh); needs --wide")
    check.add_argument("--samples", type=int, default=8, metavar="N",
                       help="samples per built-in layer check (default: 8)")
    check.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    check.add_argument("--plot", metavar="FILE.png",
                       help="draw every check's largest error against its tolerance (one "
                            "check: a heatmap of the error in units of its tolerance); needs "
                            "matplotlib")
    check.add_argument("--quiet", action="store_true",
                       help="print only the checks that did not pass, and the summary")
    bench = commands.add_parser(
        "bench", help="time fastgrad against the loop and the peers",
        description="Time fastgrad against the one-element-at-a-time loop and, when installed, "
                    "SciPy's and PyTorch's checkers. Kernels are compiled before any timing.")
    bench.add_argument("--quick", action="store_true", help="small cases, under a minute")
    bench.add_argument("--budget", type=float, default=None, metavar="S",
                       help="seconds a baseline may run before it is extrapolated")
    bench.add_argument("--no-peers", action="store_true", help="skip SciPy and PyTorch")
    bench.add_argument("--json", metavar="FILE", help="write the timings as JSON to FILE")
    bench.add_argument("--plot", metavar="FILE.png", help="time against size, log-log")
    return parser


class UsageError(Exception):
    """A mistake on the command line or in the user's check: exit 2 with the message."""


def _positive(args, *names):
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise UsageError(f"--{name}: expected a positive number, got {value}")


def _validate_check(args):
    _positive(args, "wide", "samples")
    if args.activation is not None:
        if not args.wide:
            raise UsageError("--activation: sets the activation of the --wide layer; give "
                             "--wide N too")
        if args.target:
            raise UsageError("--wide and --activation: apply to the built-in check, not to "
                             "TARGET")
        from . import activations

        try:
            activations.get(args.activation)
        except (ValueError, TypeError) as error:
            raise UsageError(f"--{error}") from None
    if args.wide and args.target:
        raise UsageError("--wide: applies to the built-in check, not to TARGET")


def _check(args):
    _validate_check(args)
    from ._selfcheck import builtin_checks, load_user_check, user_checks
    from ._warmup import BackgroundCompile, CompileNotice

    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    progress = None  # long checks only: a bar on a terminal, a few lines in a file
    started = time.perf_counter()
    helper = None
    if args.target:
        function = load_user_check(args.target)
        module_part, _, function_name = args.target.rpartition(":")
        label = f"{module_part.replace(chr(92), '/').rsplit('/', 1)[-1]}:{function_name}"
        rows_iter = user_checks(function, name=label, method=args.method,
                                seed=args.seed, progress=progress)
    else:
        # the float64 checks compile here while a second process compiles the float32
        # kernels, which this one waits for before it needs them (the small model is
        # differenced in plain NumPy: the whole-model kernel is not needed)
        jobs = [("layers", d) for d in dtypes if d != "float64"]
        helper = BackgroundCompile(jobs if "float64" in dtypes else []).start()
        rows_iter = builtin_checks(dtypes, seed=args.seed, method=args.method, wide=args.wide,
                                   n_samples=args.samples,
                                   wide_activation=args.activation or "tanh",
                                   progress=progress, before_model=helper.wait,
                                   before_dtype=lambda dtype: dtype != "float64" and
                                   helper.wait())
    rows = []
    try:
        with CompileNotice() as compiling:
            for row in rows_iter:
                if not rows and not args.quiet:  # the header only once something is there
                    print(_line([title for title, _ in CHECK_COLUMNS], CHECK_COLUMNS))
                rows.append(row)
                if not args.quiet or row.verdict != "passed":
                    print(_line(_cells(row), CHECK_COLUMNS), flush=True)
    finally:
        if helper is not None:
            helper.wait()
    _report(rows, started, compiling)
    if args.json:
        _write_json(args.json, {"fastgrad": __version__, "command": "check",
                                "passed": all(row.verdict == "passed" for row in rows),
                                "verdict": _overall(rows),
                                "results": [row.as_dict() for row in rows]})
    if args.plot:
        from ._plot import plot_check

        try:
            plot_check(rows, args.plot)
        except OSError as error:
            raise UsageError(f"--plot: cannot write {args.plot}: {error}") from error
        print(f"plot written to {args.plot}")
    return {"passed": EXIT_PASSED, "failed": EXIT_FAILED,
            "inconclusive": EXIT_INCONCLUSIVE}[_overall(rows)]


def _overall(rows):
    verdicts = {row.verdict for row in rows}
    if "failed" in verdicts:
        return "failed"
    return "inconclusive" if "inconclusive" in verdicts else "passed"


def _report(rows, started, compiling):
    for row in rows:
        worst = row.worst
        if row.verdict == "failed" and worst is not None:
            print(f"FAILED {row.target} {row.parameter}: element {worst.index}: numerical "
                  f"{worst.numerical:.10g}, analytic {worst.analytic:.10g}, |error| "
                  f"{worst.abs_error:.3g} > tolerance {worst.tolerance:.3g}")
        elif row.verdict == "inconclusive":
            print(f"INCONCLUSIVE {row.target} {row.parameter}: {row.verdict_reason}")
    counts = {verdict: sum(row.verdict == verdict for row in rows)
              for verdict in ("passed", "failed", "inconclusive")}
    summary = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["inconclusive"]:
        summary += f", {counts['inconclusive']} inconclusive"
    total = time.perf_counter() - started
    compiled = (f", of which {compiling.seconds:.1f} s compiling {len(compiling.kernels)} "
                f"kernel(s), once" if compiling.kernels else "")
    print(f"{summary} ({total:.2f} s{compiled})")


def _write_json(path, payload):
    try:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, default=_json_default)
    except OSError as error:
        raise UsageError(f"--json: cannot write {path}: {error.strerror}") from error


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
    """Entry point of the ``fastgrad`` command; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 passed, 1 failed, 2 usage or input error (also when the user's function raised),
        3 inconclusive.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    from ._plot import PlotUnavailable
    from ._selfcheck import UserCheckError

    try:
        if args.plot:
            from ._plot import _pyplot

            _pyplot()  # fail before the work, not after it
        return _check(args) if args.command == "check" else _bench(args)
    except (UsageError, UserCheckError, PlotUnavailable) as error:
        print(f"fastgrad {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
