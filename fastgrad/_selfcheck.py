"""What ``fastgrad check`` checks: fastgrad's own objects, or a user's check function."""

import importlib
import importlib.util
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import activations, costs, losses
from . import model as model_module
from ._checker import check_gradients
from ._model_check import gradient_check
from .layers import FullyConnected

ACTIVATIONS = [
    activations.Identity(), activations.Sigmoid(), activations.TanH(), activations.ReLU(),
    activations.LeakyReLU(), activations.ELU(), activations.SELU(), activations.SiLU(),
    activations.Softplus(), activations.Softsign(), activations.Arctan(),
    activations.BentIdentity(), activations.Gaussian(), activations.PiecewiseLinear(),
    activations.SoftMax(),
]
# the Keras-like costs take (AL, Y); checked here in fastgrad.losses' (Y, Y_hat) order
LOSSES = [losses.CrossEntropy(), *(costs.internal_loss(cost) for cost in (
    costs.BinaryCrossentropy(), costs.MSE(), costs.MAE()))]


class UserCheckError(Exception):
    """A user's ``module:function`` could not be loaded or did not return a check."""


@dataclass
class Row:
    """One line of the report (arrays kept for plots, left out of JSON)."""

    target: str
    parameter: str
    shape: tuple
    dtype: str
    method: str
    relative_error: float
    max_abs_error: float
    worst: object
    seconds: float
    passed: bool
    numerical: np.ndarray = field(default=None, repr=False)
    analytic: np.ndarray = field(default=None, repr=False)
    kind: str = "array"
    #: (rtol, atol) of an array check: element i was allowed atol + rtol * |analytic_i|
    tolerance: tuple = None
    verdict: str = ""
    verdict_reason: str = ""
    #: The result's ``worst`` list (failures first), kept for the plot.
    worst_list: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        if not self.verdict:
            self.verdict = "passed" if self.passed else "failed"

    def worst_text(self):
        """The element that most exceeds its tolerance (``result.worst[0]``), and by how much."""
        if self.worst is None:
            return ""
        ratio = self.worst.abs_error / self.worst.tolerance if self.worst.tolerance > 0 \
            else float("inf")
        return f"{self.worst.index} {self.worst.abs_error:.1e}, {ratio:.2g}x"

    def as_dict(self):
        worst = None if self.worst is None else {
            "index": list(self.worst.index), "numerical": self.worst.numerical,
            "analytic": self.worst.analytic, "abs_error": self.worst.abs_error,
            "tolerance": self.worst.tolerance}
        return {"object": self.target, "parameter": self.parameter, "shape": list(self.shape),
                "dtype": self.dtype, "method": self.method,
                "relative_error": self.relative_error, "max_abs_error": self.max_abs_error,
                "worst": worst, "seconds": self.seconds, "passed": self.passed,
                "verdict": self.verdict, "verdict_reason": self.verdict_reason}


def _first_failing(worst):
    failing = [w for w in worst if not w.kink]
    return failing[0] if failing else (worst[0] if worst else None)


def _verdict(result):
    """The result's verdict (passed, failed, inconclusive) and why; older results: passed."""
    verdict = getattr(result, "verdict", "passed" if result.passed else "failed")
    return verdict, str(getattr(result, "verdict_reason", "") or "")


def _allowed(result):
    rtol, atol = getattr(result, "rtol", None), getattr(result, "atol", None)
    return None if rtol is None or atol is None else (float(rtol), float(atol))


def short_name(name):
    """``FullyConnected(n_out=3, activation=SoftMax())`` -> ``FullyConnected(3, SoftMax())``."""
    return re.sub(r"\b(n_out|units|activation)=", "", name)


def row_from(target, parameter, result):
    """A row from a :class:`GradCheckResult`."""
    verdict, reason = _verdict(result)
    return Row(target=short_name(target), parameter=parameter,
               shape=tuple(result.analytic.shape), dtype=str(result.dtype), method=result.method,
               relative_error=float(result), max_abs_error=result.max_abs_error,
               worst=_first_failing(result.worst), seconds=result.elapsed_s,
               passed=bool(result.passed), numerical=result.numerical, analytic=result.analytic,
               verdict=verdict, verdict_reason=reason, tolerance=_allowed(result),
               worst_list=list(result.worst))


def rows_from_model(target, result, dtype):
    """One row per layer and parameter of a :class:`ModelCheckResult`."""
    share = result.elapsed_s / max(1, len(result.layers))
    verdict, reason = _verdict(result)
    rows = []
    for entry in result.layers:
        entry_verdict = getattr(entry, "verdict", None) or (
            "failed" if not entry.passed else
            "inconclusive" if verdict == "inconclusive" else "passed")
        rows.append(Row(target=short_name(f"{target} layer {entry.layer} {entry.layer_name}"),
                        parameter=entry.parameter, shape=entry.shape, dtype=dtype,
                        method=result.method, relative_error=entry.distance,
                        max_abs_error=entry.max_abs_error, worst=_first_failing(entry.worst),
                        seconds=share, passed=entry.passed, numerical=entry.numerical,
                        analytic=entry.analytic, kind="model", verdict=entry_verdict,
                        verdict_reason=reason, tolerance=_allowed(entry)))
    return rows


def _labels(loss, rng, n_samples, n_out, dtype):
    P = rng.uniform(0.05, 0.95, size=(n_samples, n_out))
    if isinstance(loss, losses.CrossEntropy):
        P /= P.sum(axis=1, keepdims=True)
        Y = np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    elif loss.code == costs.BinaryCrossentropy.code:
        Y = rng.integers(0, 2, size=(n_samples, n_out)).astype(float)
    else:
        Y = rng.normal(size=(n_samples, n_out))
    return Y.astype(dtype), P.astype(dtype)


def _method_for_arrays(method):
    return "auto" if method == "model" else method


def builtin_checks(dtypes=("float64", "float32"), *, seed=0, method="auto", wide=None,
                   n_samples=8, wide_activation="tanh", progress=None, before_model=None,
                   before_dtype=None):
    """Yield a :class:`Row` for every built-in activation, loss, layer and a small model.

    ``before_dtype(name)`` and ``before_model()``, when given, are called before the checks of
    each dtype and before each model check (the command line waits there for kernels being
    compiled in another process).
    """
    array_method = _method_for_arrays(method)
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name)
        if before_dtype is not None:
            before_dtype(dtype.name)
        rng = np.random.default_rng(seed)
        for activation in ACTIVATIONS:
            X = rng.normal(size=(n_samples, 6)).astype(dtype)
            dLdY = rng.normal(size=X.shape).astype(dtype)
            result = check_gradients(activation.forward, activation.backward(X, dLdY), X, dLdY,
                                     method=array_method, seed=seed, progress=progress)
            yield row_from(repr(activation), "X", result)
        for loss in LOSSES:
            Y, P = _labels(loss, rng, n_samples, 4, dtype)
            result = check_gradients(lambda p, loss=loss, Y=Y: loss.forward(Y, p),
                                     loss.backward(Y, P), P, 1.0, method=array_method,
                                     seed=seed, progress=progress)
            yield row_from(repr(loss), "Y_hat", result)
        layer_specs = [(5, 5, activation, n_samples) for activation in ("tanh", "relu",
                                                                          "softmax")]
        if wide:
            layer_specs.append((wide, wide, wide_activation, n_samples))
        for n_in, n_out, activation, samples in layer_specs:
            yield from _layer_rows(n_in, n_out, activation, samples, dtype, rng, seed,
                                   array_method, progress)
        if before_model is not None:
            before_model()
        yield from _model_rows(dtype, rng, seed, method, progress)


def _layer_rows(n_in, n_out, activation, n_samples, dtype, rng, seed, method, progress):
    layer = FullyConnected(n_out, activation=activation, seed=seed)
    X = rng.normal(size=(n_samples, n_in)).astype(dtype)
    dLdY = rng.normal(size=(n_samples, n_out)).astype(dtype)
    layer.forward(X)
    layer.backward(dLdY)
    for name in ("W", "b"):
        started = time.perf_counter()
        result = check_gradients(layer.forward_with_param(name, X), layer.gradients[name],
                                 layer.parameters[name], dLdY, method=method, seed=seed,
                                 progress=progress)
        row = row_from(repr(layer), name, result)
        row.seconds = time.perf_counter() - started
        yield row


def _model_rows(dtype, rng, seed, method, progress):
    net = model_module.Model()
    net.add(FullyConnected(16, activation="relu", seed=seed))
    net.add(FullyConnected(8, activation="tanh", seed=seed))
    net.add(FullyConnected(3, activation="softmax", seed=seed))
    net.configure(input_size=4, cost_type=costs.CategoricalCrossentropy(), dtype=dtype,
                  seed=seed)
    X = rng.normal(size=(32, 4))
    Y = np.eye(3)[rng.integers(0, 3, 32)]
    model_method = method if method in ("model", "exhaustive") else "auto"
    result = gradient_check(net, X, Y, method=model_method, progress=progress, seed=seed)
    yield from rows_from_model("Model 4-16-8-3", result, str(dtype))


def load_user_check(spec):
    """Import ``path/to/module.py:function`` or ``package.module:function``; return the function.

    Raises
    ------
    UserCheckError
        With a message saying what could not be found.
    """
    if ":" not in spec:
        raise UserCheckError(f"{spec!r}: expected module.py:function or package.module:function")
    module_part, _, function_name = spec.rpartition(":")
    if not module_part or not function_name:
        raise UserCheckError(f"{spec!r}: expected module.py:function or package.module:function")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise UserCheckError(f"{module_part}: no such file")
        name = f"_fastgrad_user_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.resolve().parent))
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:
            raise UserCheckError(f"{module_part}: importing it raised "
                                 f"{type(error).__name__}: {error}") from error
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as error:
            raise UserCheckError(f"{module_part}: cannot import it ({error})") from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserCheckError(f"{spec}: {module_part} has no function {function_name!r}")
    return function


def user_checks(function, *, name, method="auto", seed=0, progress=None):
    """Run a user's check function and yield rows.

    The function takes no arguments and returns ``(fn, grad, x)`` or ``(fn, grad, x, dLdf)``
    for :func:`check_gradients`, or ``(model, X, Y)`` for a configured model.
    """
    try:
        returned = function()
    except Exception as error:
        raise UserCheckError(f"{name}: calling it raised {type(error).__name__}: {error}") \
            from error
    if not isinstance(returned, (tuple, list)) or len(returned) not in (3, 4):
        raise UserCheckError(f"{name}: expected it to return (fn, grad, x[, dLdf]) or "
                             f"(model, X, Y), got {type(returned).__name__}")
    first = returned[0]
    if hasattr(first, "layers") and hasattr(first, "cost") and len(returned) == 3:
        model_method = method if method in ("model", "exhaustive") else "auto"
        result = _run_user(name, gradient_check, first, returned[1], returned[2],
                           method=model_method, progress=progress, seed=seed)
        dtype = str(getattr(first, "dtype", "float64"))
        yield from rows_from_model(name, result, dtype)
        return
    fn, grad, x, *rest = returned
    dLdf = rest[0] if rest else 1.0
    result = _run_user(name, check_gradients, fn, grad, x, dLdf,
                       method=_method_for_arrays(method), seed=seed, progress=progress)
    yield row_from(name, "x", result)


def _run_user(name, check, *args, **options):
    """Run a check of the user's objects; what they (or bad inputs) raise is a UserCheckError.

    The message keeps the exception's notes (fastgrad adds one naming the element that was
    being perturbed when ``fn`` raised).
    """
    try:
        return check(*args, **options)
    except Exception as error:
        notes = "".join(f"; {note}" for note in getattr(error, "__notes__", ()))
        raise UserCheckError(f"{name}: {type(error).__name__}: {error}{notes}") from error


__all__ = ["Row", "UserCheckError", "builtin_checks", "load_user_check",
           "user_checks"]
