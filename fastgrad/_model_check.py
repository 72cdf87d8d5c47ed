"""``gradient_check(model, X, Y)``: every parameter of every layer of a model, checked."""

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from . import _tolerances, _verdict
from ._checker import check_gradients
from ._identity import is_fastgrad_function
from ._model_stacked import StackedModel, sample_losses, use_stacked
from ._progress import progress_bar
from ._result import summarize
from ._threads import threads_for
from ._validation import check_positive, check_step
from ._verdict import Criteria, Look, Measured, decide, judge, noise_floor
from .kernels import activations as _codes
from .kernels import model as _kernels
from .methods import read_only

METHODS = ("auto", "model", "exhaustive")
#: Elements of a parameter differenced per kernel call (progress granularity).
ELEMENTS_PER_CALL = 2**15
#: Largest slope table of the linear shortcut (float64 elements: 64 MiB).
LINEAR_TABLE_MAX = 2**23
#: Elements of the intermediates built per block of samples for that table.
TABLE_BLOCK_ELEMENTS = 2**18
_NO_TABLE = (np.zeros((0, 0, 0)), np.zeros((0, 0)), 0)


@dataclass
class ParameterCheck:
    """The check of one parameter of one layer."""

    layer: int
    layer_name: str
    parameter: str
    shape: tuple
    distance: float
    max_abs_error: float
    passed: bool
    n_failed: int
    #: Elements excused at a kink (measured evidence, see ``fastgrad._verdict``): left out of
    #: ``distance``, not failures.
    n_kinks: int
    #: Elements judged by a second look at a finer step.
    n_refined: int
    worst: list = field(repr=False)
    numerical: np.ndarray = field(repr=False)
    analytic: np.ndarray = field(repr=False)
    #: "passed", "failed" or "inconclusive", and why.
    verdict: str = "passed"
    verdict_reason: str = ""
    #: Elements that could not be judged (make the verdict inconclusive unless one failed).
    n_unresolved: int = 0


class ModelCheckResult(float):
    """Outcome of :func:`gradient_check`; its float value is the notebook's distance.

    The value is ``norm(approx - grad) / (norm(approx) + norm(grad))`` over all parameters of
    all layers, leaving out the elements within one step of a kink (a ReLU unit whose input
    is within epsilon of 0 for some sample), where a central difference measures nothing;
    each layer's entry counts them in ``n_kinks``.

    Attributes
    ----------
    layers : list of ParameterCheck
        One entry per layer and parameter: distance, max abs error, worst elements, passed.
    verdict : {"passed", "failed", "inconclusive"}
        Failed when any parameter failed; else inconclusive when any could not be judged
        (``verdict_reason`` says which and why); else passed.
    verdict_reason : str
    passed : bool
        ``verdict == "passed"``.
    method : str
        ``"model"`` (column-wise recomputation in Numba) or ``"exhaustive"``.
    method_note : str
        Why that method ran, and what was held fixed (dropout in inference behaviour).
    elapsed_s : float
    n_parameters : int
        Elements in the distance: every parameter element but those at kinks.
    """

    def __new__(cls, value, **attributes):
        result = super().__new__(cls, value)
        result.__dict__.update(attributes)
        return result

    __str__ = float.__repr__

    def __bool__(self):
        return bool(self.passed)

    def __reduce__(self):
        return (_rebuild, (float(self), dict(self.__dict__)))

    def __repr__(self):
        status = {"passed": "passed", "failed": "FAILED"}.get(self.verdict, "INCONCLUSIVE")
        n_kinks = sum(entry.n_kinks for entry in self.layers)
        kinks = f", {n_kinks} at kinks left out" if n_kinks else ""
        lines = [f"ModelCheckResult({status}: distance {float(self):.3e}, "
                 f"{self.n_parameters} parameters{kinks}, method {self.method}, "
                 f"{self.elapsed_s:.3f} s)",
                 f"  verdict: {self.verdict_reason}",
                 f"  {self.method_note}",
                 f"  {'layer':<4} {'name':<38} {'param':<5} {'shape':<11} {'distance':>10} "
                 f"{'max |err|':>10}  worst element"]
        for entry in self.layers:
            worst = next((w for w in entry.worst if not w.kink), None)
            where = "" if worst is None or entry.verdict == "passed" else \
                f"{worst.index}: num {worst.numerical:.6g}, ana {worst.analytic:.6g}"
            shape = "x".join(map(str, entry.shape))
            mark = {"passed": "ok", "failed": "FAIL "}.get(entry.verdict, "INCONCLUSIVE ")
            lines.append(f"  {entry.layer:<4} {entry.layer_name[:38]:<38} {entry.parameter:<5} "
                         f"{shape:<11} {entry.distance:10.2e} {entry.max_abs_error:10.2e}  "
                         f"{mark}{where}")
        return "\n".join(lines)


def _rebuild(value, attributes):
    return ModelCheckResult(value, **attributes)


def _distance(numerical, analytic):
    numerator = np.linalg.norm(numerical - analytic)
    denominator = np.linalg.norm(numerical) + np.linalg.norm(analytic)
    if numerator == 0:
        return 0.0
    return float(numerator / denominator) if denominator > 0 else float("inf")


def gradient_check(model, X, Y, epsilon=1e-4, *, method="auto", order=4, rtol=None, atol=None,
                   progress=None, seed=None):
    """Check the gradients of every parameter of every layer of a configured model.

    Parameters
    ----------
    model : fastgrad.model.Model
        A configured model (``configure`` was called).
    X : array_like, shape (n_samples, input_size)
    Y : array_like
        Targets for the model's cost.
    epsilon : float
        The finite-difference step (the notebook's 1e-4).
    method : {"auto", "model", "exhaustive"}
        ``"model"`` recomputes, for each perturbed element, only the samples and the column it
        changes, in Numba; it applies to chains of dense and dropout layers with built-in
        activations and costs. ``"exhaustive"`` evaluates the whole loss per element (stacked
        where the layers allow) and applies to any layers, activations and costs. ``"auto"``
        picks ``"model"`` where it applies.
    order : {2, 4}
        Central differences at epsilon (2, the notebook's formula) or Richardson extrapolation
        from epsilon and epsilon/2 (4, the default): with the notebook's epsilon = 1e-4 the
        second-order truncation error (~1e-8 relative) shows in the distance of saturated
        sigmoid outputs, 1 in 6000 of the notebook's networks above 1e-7; fourth order
        removes it at twice the cost.
    rtol, atol : float, optional
        Per-element tolerance; defaults from the per-dtype table.
    progress : bool, optional
        Progress bar: None (only for long checks), True, False.
    seed : int, optional
        Seed of the exhaustive method's random probes.

    Returns
    -------
    ModelCheckResult
        A float (the distance over all parameters) with a per-layer report.

    Notes
    -----
    The analytic gradients come from ``model.forward(X)`` and ``model.backward(Y)`` with dropout
    held in its inference behaviour; afterwards every layer's parameters, cache and gradients
    and the model's last output are as they were.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import activations, costs, layers, model, optimizers, utils
    >>> net = model.Model()
    >>> net.add(layers.Dense(units=4, activation=activations.Tanh()))
    >>> net.add(layers.Dense(units=1, activation=activations.Sigmoid()))
    >>> net.configure(input_size=3, cost_type=costs.BinaryCrossentropy(),
    ...               optimizer=optimizers.SGD(), seed=0)
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(20, 3)), rng.integers(0, 2, (20, 1))
    >>> result = utils.gradient_check(net, X, Y)
    >>> result.passed, result < 1e-7
    (True, True)
    """
    started = time.perf_counter()
    X, Y, epsilon = _validate(model, X, Y, epsilon, method, order, rtol, atol, progress)
    work = X.shape[0] * sum(p.size for layer in model.layers
                            for p in getattr(layer, "parameters", {}).values())
    with threads_for(work):
        return _check_model(started, model, X, Y, epsilon, method, order, rtol, atol,
                            progress, seed)


def _check_model(started, model, X, Y, epsilon, method, order, rtol, atol, progress, seed):
    saved = _save_state(model)
    try:
        model.forward(X, training=False)
        model.backward(Y)
        analytic = [{name: np.array(grad) for name, grad in getattr(layer, "gradients",
                                                                     {}).items()}
                    for layer in model.layers]
        loss = np.asarray(model.cost.forward(Y, model.output), np.float64)
    finally:
        _restore_state(model, saved)
    if not np.all(np.isfinite(loss)):
        raise ValueError(f"the model's loss at X is {float(np.sum(loss))}: a gradient check "
                         "needs a finite loss (a saturated softmax under a log? check at "
                         "another X, or with a cost that takes logits)")
    _check_gradients_shapes(model, analytic)
    dropout = any(_is_dropout(layer) for layer in model.layers)
    reason = _model_method_unavailable(model)
    if method == "model" and reason is not None:
        raise ValueError(f"method: 'model' cannot check this model: {reason}")
    chosen = "model" if method == "model" or (method == "auto" and reason is None) \
        else "exhaustive"
    note = "requested" if method != "auto" else (
        "auto: every layer is dense with a built-in activation and the cost is built in"
        if chosen == "model" else f"auto: {reason}")
    if dropout:
        note += "; dropout layers held in their inference behaviour (identity)"
    try:
        if chosen == "model":
            numerical = _model_differences(model, X, Y, epsilon, order, progress)
        else:
            numerical = _exhaustive_differences(model, X, Y, epsilon, order, analytic,
                                                progress, seed)
        return _report(model, X, Y, epsilon, order, numerical, analytic, chosen, note, rtol,
                       atol, started)
    finally:
        _restore_state(model, saved)


def _validate(model, X, Y, epsilon, method, order, rtol, atol, progress):
    if not hasattr(model, "layers") or not hasattr(model, "backward"):
        raise TypeError(f"model: expected a fastgrad model.Model, got {type(model).__name__}")
    if getattr(model, "cost", None) is None:
        raise ValueError("model: call configure(input_size, cost_type, optimizer) first")
    # a private, read-only copy: a layer that writes into its input must neither change the
    # caller's X nor difference a model whose data moves between calls
    X = read_only(np.array(model._input(X), copy=True))
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))
        raise ValueError(f"X: contains {len(bad)} NaN or infinite element(s), the first at "
                         f"index {tuple(int(i) for i in bad[0])}")
    Y = np.asarray(Y)
    if Y.dtype.kind not in "iufb":
        raise TypeError(f"Y: expected a numeric array, got dtype {Y.dtype}")
    if Y.ndim == 0 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"Y: expected {X.shape[0]} samples (rows of X), got shape {Y.shape}")
    if not np.all(np.isfinite(Y)):
        raise ValueError("Y: contains NaN or infinite values")
    epsilon = float(check_positive(epsilon, "epsilon"))
    _check_parameters(model)
    values = [np.asarray(value, np.float64) for layer in model.layers
              for value in getattr(layer, "parameters", {}).values()]
    scale = max([1.0] + [float(np.max(np.abs(v), initial=0.0)) for v in values if v.size])
    # (the model's differences are taken in float64, whatever its dtype)
    check_step(epsilon, "epsilon", np.dtype(np.float64), scale, "use the default epsilon=1e-4")
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if isinstance(order, bool) or order not in (2, 4):
        raise ValueError(f"order: expected 2 or 4, got {order!r}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None:
            check_positive(value, name, allow_zero=True)
    if progress not in (None, True, False):
        raise TypeError(f"progress: expected None, True or False, got {progress!r}")
    return X, Y, epsilon


def _check_parameters(model):
    """Each layer's parameters: a dictionary of its own float arrays, the same at every
    access (fastgrad perturbs the arrays it finds there)."""
    for index, layer in enumerate(model.layers):
        parameters = getattr(layer, "parameters", {})
        where = f"layer {index} ({type(layer).__name__})"
        if not isinstance(parameters, dict):
            raise TypeError(f"{where}: parameters must be a dict of arrays, got "
                            f"{type(parameters).__name__}")
        for name, value in parameters.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                raise TypeError(f"{where}: parameter {name!r} must be a float array, got "
                                f"{type(value).__name__} {value!r:.40}")
            if getattr(layer, "parameters", {}).get(name) is not value:
                raise ValueError(
                    f"{where}: parameters returns new arrays at every access; fastgrad "
                    "perturbs the arrays it finds in layer.parameters, so they must be the "
                    "layer's own (return self._parameters, not copies)")


def _check_gradients_shapes(model, analytic):
    """A layer's gradient of each parameter must have that parameter's shape."""
    for index, (layer, gradients) in enumerate(zip(model.layers, analytic, strict=True)):
        for name, value in getattr(layer, "parameters", {}).items():
            grad = gradients.get(name)
            if grad is not None and grad.shape != value.shape:
                raise ValueError(f"layer {index} ({type(layer).__name__}): gradients[{name!r}]"
                                 f" has shape {grad.shape}, parameter {name!r} has shape "
                                 f"{value.shape}")


def _save_state(model):
    """What the check may touch: outputs, caches, gradients, and the parameters' values (a
    user's layer may write into its own parameters in forward)."""
    saved = {"output": model.output, "layers": [], "parameters": [], "arrays": []}
    for layer in model.layers:
        # every other array a layer keeps (running statistics updated in forward)
        saved["arrays"].append({attr: (value, value.copy()) for attr, value in
                                vars(layer).items() if isinstance(value, np.ndarray)}
                               if hasattr(layer, "__dict__") else {})
        saved["layers"].append({attr: (dict(value) if isinstance(value, dict) else value)
                                for attr in ("cache", "gradients", "training")
                                if (value := getattr(layer, attr, None)) is not None})
        parameters = getattr(layer, "parameters", None)
        saved["parameters"].append(
            {} if not isinstance(parameters, dict) else
            {name: (array, array.copy()) for name, array in parameters.items()
             if isinstance(array, np.ndarray)})
    return saved


def _restore_state(model, saved):
    model.output = saved["output"]
    for layer, state in zip(model.layers, saved["layers"], strict=True):
        for attr, value in state.items():
            setattr(layer, attr, dict(value) if isinstance(value, dict) else value)
    for layer, arrays in zip(model.layers, saved["arrays"], strict=True):
        for attr, (array, values) in arrays.items():
            if getattr(layer, attr, None) is not array:
                setattr(layer, attr, array)
            if array.flags.writeable and not np.array_equal(array, values, equal_nan=True):
                array[...] = values
    for layer, parameters in zip(model.layers, saved["parameters"], strict=True):
        for name, (array, values) in parameters.items():
            if not np.array_equal(array, values, equal_nan=True):
                array[...] = values  # the same object: aliases of it see the restore
            if layer.parameters.get(name) is not array:
                layer.parameters[name] = array


def _model_method_unavailable(model):
    """None when the fused kernel reproduces the model's forward pass, else why it cannot.

    What matters is that every forward computation is fastgrad's own (a subclass that
    overrides only ``backward`` is still checked by the kernel, against its real forward).
    """
    for index, layer in enumerate(model.layers):
        if _is_dropout(layer):
            continue
        if not _is_dense(layer):
            return f"layer {index} ({type(layer).__name__}) has a forward pass of its own"
        activation = layer.activation
        if not is_fastgrad_function(getattr(type(activation), "forward", None),
                                    "Activation.forward", "SoftMax.forward"):
            return f"layer {index} has a user activation ({type(activation).__name__})"
    if not is_fastgrad_function(getattr(type(model.cost), "forward", None), "Loss.forward"):
        return f"the cost ({type(model.cost).__name__}) is not built in"
    return None


def _is_dropout(layer):
    return is_fastgrad_function(type(layer).forward, "Dropout.forward")


def _is_dense(layer):
    """fastgrad's dense layer (any activation): ``act(X @ W + b)``."""
    return is_fastgrad_function(type(layer).forward, "FullyConnected.forward") and \
        is_fastgrad_function(getattr(type(layer), "_forward", None), "FullyConnected._forward")


class _ModelKernel:
    """The model's forward state, packed once for ``kernels.model.model_differences``.

    ``differences`` differences any rows of one parameter at any step: the whole check uses it
    row block by row block, and refinement uses it again on the rows of failing elements.
    """

    def __init__(self, model, X, Y):
        self.chain = [(index, layer) for index, layer in enumerate(model.layers)
                      if not _is_dropout(layer)]
        chain = self.chain
        self.widths = np.array([X.shape[1]] + [layer.n_out for _, layer in chain],
                               dtype=np.int64)
        weights = [layer.parameters["W"].astype(np.float64) for _, layer in chain]
        biases = [layer.parameters["b"].astype(np.float64).reshape(-1) for _, layer in chain]
        post = [X.astype(np.float64)]
        pre = [np.zeros_like(post[0])]
        for (_, layer), W, b in zip(chain, weights, biases, strict=True):
            Z = post[-1] @ W + b
            pre.append(Z)
            post.append(np.asarray(layer.activation.forward(Z), dtype=np.float64))
        self.cost_code = model.cost.code
        Y64, _ = model.cost._arrays(Y, post[-1])
        self.Y = np.ascontiguousarray(Y64, dtype=np.float64)
        self.base_loss = np.empty(X.shape[0])
        _kernels.sample_losses(self.cost_code, self.Y, post[-1], self.base_loss)
        self.weights, self.w_off = _packed([np.zeros(0), *weights])
        self.biases, self.b_off = _packed([np.zeros(0), *biases])
        self.pre, self.a_off = _packed(pre)
        self.post, _ = _packed(post)
        self.codes = np.array([0] + [layer.activation.code for _, layer in chain],
                              dtype=np.int64)
        self.alphas = np.array([0.0] + [float(layer.activation.alpha) for _, layer in chain])
        self.tables = [_linear_tables(position, chain, pre, weights)
                       for position in range(1, len(chain) + 1)]
        #: root-sum-square of the per-sample loss terms over n_samples: what a perturbation
        #: can move (every sample's term), the magnitude of the rounding floor
        self.magnitude = float(np.sqrt(np.sum(self.base_loss**2))) / X.shape[0]

    def differences(self, position, name, param, rows, step, order, central, gap):
        """Difference rows ``rows`` (a slice) of parameter ``name`` of chain layer
        ``position`` (1-based), writing ``central[rows]`` and ``gap[rows]``."""
        slopes, margin, target = self.tables[position - 1]
        _kernels.model_differences(
            position, name == "b", param[rows], rows.start, self.widths, self.weights,
            self.w_off, self.biases, self.b_off, self.pre, self.post, self.a_off, self.codes,
            self.alphas, self.cost_code, self.Y, slopes, margin, target, step, False, order,
            central[rows], gap[rows])


def _packed(arrays):
    offsets = np.cumsum([0] + [a.size for a in arrays])[:-1].astype(np.int64)
    return np.concatenate([a.reshape(-1) for a in arrays]), offsets


class _ModelParameter:
    """One parameter of the model as a structure that refinement can use (see
    ``fastgrad._refine``): its failing elements are differenced again by the model kernel."""

    elementwise = True  # any subset of elements can be differenced on its own

    def __init__(self, kernel, position, name, loss):
        self.kernel = kernel
        self.position = position
        self.name = name
        self.loss = loss  # value -> the model's loss with this parameter replaced

    def evaluate(self, value):
        return self.loss(value)

    def magnitude(self, value, dLdf, output):
        return np.full(value.shape, self.kernel.magnitude)

    def subset_differences(self, value, dLdf, flat_indices, step_scale, relative):
        rows, columns = np.unravel_index(flat_indices, value.shape)
        if isinstance(self.kernel, StackedModel):  # any elements in one evaluation
            return self.kernel.element_differences(self.position, self.name, value, rows,
                                                   columns, step_scale, 2)
        central = np.empty(value.shape)
        gap = np.empty(value.shape)
        for row in np.unique(rows):
            self.kernel.differences(self.position, self.name, value, slice(row, row + 1),
                                    step_scale, 2, central, gap)
        return central[rows, columns], gap[rows, columns]


def _engine(model, X, Y):
    """The model kernel, or for a small model the same differences in plain NumPy."""
    chain = [(index, layer) for index, layer in enumerate(model.layers)
             if not _is_dropout(layer)]
    widths = [X.shape[1]] + [layer.n_out for _, layer in chain]
    if use_stacked(widths, X.shape[0]):
        return StackedModel(model, X, Y, chain)
    return _ModelKernel(model, X, Y)


def _model_differences(model, X, Y, epsilon, order, progress):
    kernel = _engine(model, X, Y)
    total = sum(layer.parameters[name].size for _, layer in kernel.chain
                for name in ("W", "b"))
    numerical = [{} for _ in model.layers]
    terms, rounding = _terms_and_rounding(model, kernel.chain, X, Y)
    # a perturbation can move every sample's loss, through every intermediate it changes
    finest = epsilon / (1 if order == 2 else 2)
    noise = noise_floor(rounding, finest, np.float64)
    with progress_bar(total, progress, "model check", small=total < 2**14) as bar:
        for position, (index, layer) in enumerate(kernel.chain, start=1):
            for name in ("W", "b"):
                param = layer.parameters[name].astype(np.float64)
                central = np.empty_like(param)
                gap = np.empty_like(param)
                rows = max(1, ELEMENTS_PER_CALL // param.shape[1])
                for start in range(0, param.shape[0], rows):
                    block = slice(start, min(start + rows, param.shape[0]))
                    kernel.differences(position, name, param, block, epsilon, order, central,
                                       gap)
                    bar.update(central[block].size)
                look = _ModelLook(kernel, position, name, param, rounding)
                numerical[index][name] = (Measured(central=central.reshape(-1),
                                                   noise=np.full(param.size, noise),
                                                   terms=terms[index][name].reshape(-1),
                                                   gap=gap.reshape(-1),
                                                   kink=gap.reshape(-1) if order == 4
                                                   else None), look)
    return numerical


def _terms_and_rounding(model, chain, X, Y):
    """Per parameter, the magnitude of the terms of its gradient; and the rounding scale of a
    perturbed loss.

    Both come from a backward pass in absolute values: ``|delta_l| = |act'(Z_l)| *
    (|delta_l+1| @ |W_l+1|.T)``, ``T_W = |A_l-1|.T @ |delta_l|``, ``T_b = sum |delta_l|``. The
    loss of sample n rounds like ``eps`` times ``|L_n| + sum_j |A_nj dL/dA_nj|`` (the output
    layer: a softmax at 1 - 1e-7 rounds at 1, not at its loss of 1e-7) plus, for every unit,
    ``|delta_nj|`` times the magnitude of the products its pre-activation sums.
    """
    A = [X.astype(np.float64)]
    Z = []
    for _, layer in chain:
        W = layer.parameters["W"].astype(np.float64)
        b = layer.parameters["b"].astype(np.float64).reshape(-1)
        Z.append(A[-1] @ W + b)
        A.append(np.asarray(layer.activation.forward(Z[-1]), dtype=np.float64))
    n_samples = X.shape[0]
    dLdA = np.asarray(model.cost.backward(Y, A[-1]), dtype=np.float64)
    delta = np.abs(np.asarray(chain[-1][1].activation.backward(Z[-1], dLdA), np.float64))
    per_sample = np.abs(dLdA * A[-1]).sum(axis=1)
    Y64, _ = model.cost._arrays(Y, A[-1])
    losses = sample_losses(model.cost.code, Y64, A[-1])
    per_sample += np.abs(losses) / n_samples
    terms = [{} for _ in model.layers]
    for position in range(len(chain) - 1, -1, -1):
        index, layer = chain[position]
        W = np.abs(layer.parameters["W"].astype(np.float64))
        b = np.abs(layer.parameters["b"].astype(np.float64).reshape(-1))
        inputs = np.abs(A[position])
        terms[index]["W"] = inputs.T @ delta
        terms[index]["b"] = delta.sum(axis=0).reshape(layer.parameters["b"].shape)
        per_sample += np.sum(delta * (inputs @ W + b), axis=1)
        if position:
            upstream = delta @ W.T
            previous = chain[position - 1][1].activation
            if getattr(previous, "code", None) == _codes.SOFTMAX:
                delta = np.abs(np.asarray(previous.backward(Z[position - 1], upstream)))
            else:
                slope = np.abs(np.asarray(previous.backward(
                    Z[position - 1], np.ones_like(Z[position - 1])), dtype=np.float64))
                delta = slope * upstream
    return terms, float(np.sqrt(np.sum(per_sample ** 2)))


class _ModelLook(Look):
    """Second look at one parameter's elements through the model kernel."""

    cap = 2**14

    def __init__(self, kernel, position, name, value, rounding):
        self.parameter = _ModelParameter(kernel, position, name, None)
        self.value = value
        self.rounding = rounding

    def noise(self, flat_indices, step_scale):
        return noise_floor(np.full(len(flat_indices), self.rounding), step_scale, np.float64)

    def differences(self, flat_indices, step_scale):
        return self.parameter.subset_differences(self.value, None, flat_indices, step_scale,
                                                 False)


def _linear_tables(position, chain, pre, weights):
    """Slope table, margins and target layer of the linear shortcut from layer ``position``.

    The shortcut crosses every piecewise-linear layer after ``position`` up to the first one
    that is not, or the output layer (see ``fastgrad.kernels.model``); it needs layer
    ``position`` elementwise and at least layer ``position + 1`` piecewise linear with a
    layer after it. Returns ``(slopes, margin, target)``, or empty tables and target 0.
    """
    if position + 2 > len(chain) or chain[position - 1][1].activation.code == _codes.SOFTMAX:
        return _NO_TABLE
    n_samples, width = pre[position].shape
    margin = np.full((n_samples, width), np.inf)
    slopes = None
    crossed = position + 1  # the piecewise-linear layer the next table step crosses
    while crossed < len(chain) and chain[crossed - 1][1].activation.code in _PIECEWISE_LINEAR:
        W_after = weights[crossed]  # W_{crossed + 1}
        if n_samples * width * W_after.shape[1] > LINEAR_TABLE_MAX:
            break
        slope, distance = _kink_distances(chain[crossed - 1][1].activation, pre[crossed])
        # change of Z_crossed per unit change of A_position[s, j]: W_{position+1}[j] at first
        direction = weights[position] if slopes is None else slopes
        following = np.empty((n_samples, width, W_after.shape[1]))
        block = max(1, TABLE_BLOCK_ELEMENTS // max(1, width * distance.shape[1]))
        with np.errstate(divide="ignore"):
            for start in range(0, n_samples, block):
                rows = slice(start, min(start + block, n_samples))
                current = direction if slopes is None else direction[rows]
                following[rows] = (current * slope[rows, None, :]) @ W_after
                magnitude = np.abs(current)
                ratio = np.where(magnitude > 0, distance[rows, None, :] / magnitude, np.inf)
                np.minimum(margin[rows], ratio.min(axis=2), out=margin[rows])
        slopes = following
        crossed += 1
    if slopes is None:
        return _NO_TABLE
    return slopes, margin, crossed


def _kink_distances(activation, Z):
    """Slope of a piecewise-linear activation at Z, and the distance from Z to its kinks."""
    alpha = float(activation.alpha)
    code = activation.code
    if code == _codes.IDENTITY:
        return np.ones_like(Z), np.full_like(Z, np.inf)
    if code == _codes.RELU:
        return (Z > 0).astype(np.float64), np.abs(Z)
    if code == _codes.LEAKY_RELU:
        return np.where(Z > 0, 1.0, alpha), np.abs(Z)
    # piecewise linear: clip(z / alpha, -1, 1)
    return (np.where(np.abs(Z) < alpha, 1.0 / alpha, 0.0),
            np.minimum(np.abs(Z - alpha), np.abs(Z + alpha)))


_PIECEWISE_LINEAR = (_codes.IDENTITY, _codes.RELU, _codes.LEAKY_RELU, _codes.PIECEWISE_LINEAR)


def _pure_loss(model, X, Y, target, name, value):
    """The model's loss with one parameter replaced; a leading stack axis on value is kept."""
    stacked = value.ndim == model.layers[target].parameters[name].ndim + 1
    A = X.astype(value.dtype)
    for index, layer in enumerate(model.layers):
        if _is_dropout(layer):
            continue
        if _is_dense(layer):
            params = dict(layer.parameters)
            if index == target:
                params[name] = value
            Z = A @ params["W"].astype(value.dtype) + params["b"].astype(value.dtype)
            A = np.asarray(layer.activation.forward(Z))
        else:  # a user's own layer: its own forward
            A = _user_forward(layer, index, A, name if index == target else None, value)
    if stacked:
        return np.array([model.cost.forward(Y, item) for item in A])
    return model.cost.forward(Y, A)


def _user_forward(layer, index, A, name, value):
    """A user's layer's forward with its parameter ``name`` (None: none) at ``value``.

    The value is written into the layer's own array where shape and dtype agree (a layer may
    read its parameter through an alias, ``self.W``), else swapped into a copy of its
    dictionary (a stack of values). The layer's parameters are read-only during the call:
    a forward that writes into them (a max-norm clip) is reported by name. Everything is
    restored after the call.
    """
    params = layer.parameters
    arrays = [array for array in params.values() if isinstance(array, np.ndarray)]
    target = params.get(name) if name is not None else None
    in_place = isinstance(target, np.ndarray) and target.shape == value.shape and \
        target.dtype == value.dtype and target.flags.writeable
    saved = None
    if in_place:
        saved = target.copy()
        target[...] = value
    elif name is not None:
        layer.parameters = {**params, name: value}
    writeable = [array.flags.writeable for array in arrays]
    for array in arrays:
        array.flags.writeable = False
    # the arrays the layer keeps (running statistics it rebinds in forward): put back after
    # every call, so that one evaluation (a stack) does not leak into the next
    kept = {attr: value for attr, value in getattr(layer, "__dict__", {}).items()
            if isinstance(value, np.ndarray)}
    try:
        return np.asarray(layer.forward(A))
    except ValueError as error:
        if "read-only" in str(error):
            raise ValueError(
                f"layer {index} ({type(layer).__name__}): its forward writes into one of its "
                f"parameters {sorted(params)}; a gradient check cannot difference a layer "
                "that changes its own parameters (apply a constraint such as a max-norm clip "
                "in the optimizer step, not in forward); fastgrad restored them") from error
        raise
    finally:
        for attr, value in kept.items():
            setattr(layer, attr, value)
        for array, flag in zip(arrays, writeable, strict=True):
            try:
                array.flags.writeable = flag
            except ValueError:  # (a view whose base fastgrad does not own)
                pass
        if in_place:
            target[...] = saved
        elif name is not None:
            layer.parameters = params


def _exhaustive_differences(model, X, Y, epsilon, order, analytic, progress, seed):
    numerical = [{} for _ in model.layers]
    for index, layer in enumerate(model.layers):
        for name, value in getattr(layer, "parameters", {}).items():
            fn = functools.partial(_pure_loss, model, X, Y, index, name)
            try:
                numerical[index][name] = check_gradients(
                    fn, analytic[index][name], value, 1.0, h=epsilon, method="exhaustive",
                    order=order, progress=progress, seed=seed)
            except ValueError as error:
                if "is not deterministic" not in str(error):
                    raise
                raise ValueError(
                    f"the model's loss is not deterministic (checking layer {index} "
                    f"{name!r}): {str(error).split(';')[0].split(': ', 2)[-1]}; a "
                    "layer draws new random numbers at every forward (a dropout of its own?): "
                    "hold its mask fixed while checking, as fastgrad's Dropout layers are "
                    "held in their inference behaviour") from None
    return numerical


def _report(model, X, Y, epsilon, order, numerical, analytic, method, note, rtol, atol,
            started):
    entries = []
    all_numerical = []
    all_analytic = []
    dtype = np.dtype(getattr(model, "dtype", np.float64))
    table = _tolerances.tolerance(dtype, np.float64)
    criteria = Criteria(rtol=table.rtol if rtol is None else float(rtol),
                        atol=table.atol if atol is None else float(atol),
                        atol_relative=atol is None, grad_dtype=dtype,
                        eval_dtype=np.dtype(np.float64), step_scale=float(epsilon),
                        relative=False)
    notes = []
    for index, layer in enumerate(model.layers):
        for name, measured in numerical[index].items():
            ana = np.asarray(analytic[index][name], dtype=np.float64)
            if isinstance(measured, float):  # a GradCheckResult of the exhaustive path
                entries.append(_entry_from_result(index, layer, name, measured, ana))
                counted = ~_excluded(measured, ana.shape)
                central = measured.numerical
            else:
                measured, look = measured
                value = layer.parameters[name].astype(np.float64)
                judgement = judge(measured, ana.reshape(-1), criteria, value.reshape(-1),
                                  look)
                verdict, reason = decide(judgement)
                fields = summarize(judgement, ana, ana.shape, verdict=verdict,
                                   verdict_reason=reason)
                notes += [f"layer {index} {name}: {n}" for n in judgement.notes]
                central = judgement.numerical.reshape(ana.shape)
                # (as in a result's float: unresolved elements count, kinks do not)
                counted = _verdict.has_status(judgement.status, (
                    _verdict.OK, _verdict.FAILED, _verdict.UNEXAMINED,
                    _verdict.UNRESOLVED)).reshape(ana.shape)
                entries.append(ParameterCheck(
                    layer=index, layer_name=repr(layer), parameter=name,
                    shape=tuple(ana.shape),
                    distance=_distance(central[counted], ana[counted]),
                    max_abs_error=fields["max_abs_error"], passed=fields["passed"],
                    n_failed=fields["n_failed"], n_kinks=len(fields["kinks"]),
                    n_refined=len(fields["refined"]), worst=fields["_worst"](),
                    numerical=central, analytic=ana, verdict=verdict,
                    verdict_reason=reason, n_unresolved=len(fields["unresolved"])))
            all_numerical.append(np.asarray(central, dtype=np.float64)[counted])
            all_analytic.append(ana[counted])
    verdict = _verdict.combine_verdicts([entry.verdict for entry in entries])
    reasons = [f"layer {e.layer} {e.parameter}: {e.verdict_reason}" for e in entries
               if e.verdict == verdict and verdict != _verdict.PASSED_VERDICT]
    reason = "; ".join(reasons) if reasons else "every parameter element within its tolerance"
    if notes:
        note += "; " + "; ".join(notes)
    numerical_flat = np.concatenate(all_numerical) if all_numerical else np.zeros(0)
    analytic_flat = np.concatenate(all_analytic) if all_analytic else np.zeros(0)
    return ModelCheckResult(_distance(numerical_flat, analytic_flat), layers=entries,
                            passed=verdict == _verdict.PASSED_VERDICT, verdict=verdict,
                            verdict_reason=reason, method=method, method_note=note,
                            n_parameters=int(numerical_flat.size),
                            elapsed_s=time.perf_counter() - started)


def _excluded(result, shape):
    """Elements of a GradCheckResult left out of a distance (kinks, unresolved, NaN)."""
    mask = np.zeros(shape, dtype=bool)
    for rows in (result.kinks, result.unresolved, result.nan_elements):
        if len(rows):
            mask[tuple(np.asarray(rows).T)] = True
    return mask


def _entry_from_result(index, layer, name, result, analytic):
    counted = ~_excluded(result, analytic.shape)
    return ParameterCheck(
        layer=index, layer_name=repr(layer), parameter=name, shape=tuple(analytic.shape),
        distance=_distance(result.numerical[counted], analytic[counted]),
        max_abs_error=result.max_abs_error, passed=result.passed, n_failed=result.n_failed,
        n_kinks=len(result.kinks), n_refined=len(result.refined), worst=result.worst,
        numerical=result.numerical, analytic=analytic, verdict=result.verdict,
        verdict_reason=result.verdict_reason, n_unresolved=len(result.unresolved))
