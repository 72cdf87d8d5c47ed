"""Compiling the kernels: ahead of timing (``warmup``), or only as a check needs them.

Numba compiles a kernel the first time it is called with new argument types and caches the
machine code on disk (``fastgrad.kernels._cache``), so a compile happens once per fastgrad
version and machine. ``warmup`` compiles everything (benchmarks call it so that no timed
region contains a compile). The command line instead compiles only what a check calls, says so
in one line when it happens (:class:`CompileNotice`), and for the built-in check compiles the
float32 and whole-model kernels in a second process while the first one runs the float64
checks (:class:`BackgroundCompile`): on two cores that halves the first run.
"""

import subprocess
import sys
import time

import numpy as np

from .kernels import _cache, activations, dense, directions, losses, model, softmax
from .kernels import optimizers as optimizer_kernels

#: Kernel groups (see ``compile_group``); ``warmup`` compiles all of them.
GROUPS = ("layers", "differences", "model", "training")


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtypes: expected float32 or float64, got {dtype}")
    return dtype


def compile_group(group, dtype):
    """Compile (or load from the cache) one group of kernels for one dtype.

    Parameters
    ----------
    group : {"layers", "differences", "model", "training"}
        ``layers``: forward and backward passes of activations, softmax, dense layers and
        losses; ``differences``: the structured finite-difference kernels; ``model``: the
        whole-model kernels (float64 whatever ``dtype``); ``training``: a model's training
        step and the optimizers.
    dtype : dtype
        float32 or float64.
    """
    dtype = _float_dtype(dtype)
    if group not in GROUPS:
        raise ValueError(f"group: expected one of {GROUPS}, got {group!r}")
    # through the public objects, on tiny arrays: what compiles is what they call (with the
    # argument types they pass), not a guess at it
    from ._checker import check_gradients
    from .activations import SoftMax, TanH
    from .layers import FullyConnected
    from .losses import CrossEntropy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 3)).astype(dtype)
    dLdY = rng.normal(size=(2, 3)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[[0, 2]]
    P = SoftMax().forward(X)
    if group == "layers":
        for activation in (TanH(), SoftMax()):
            activation.forward(X)
            activation.backward(X, dLdY)
        loss = CrossEntropy()
        loss.forward(Y, P)
        loss.backward(Y, P)
        for name in ("tanh", "softmax"):
            layer = FullyConnected(3, activation=name, seed=0)
            layer.forward(X)
            layer.backward(dLdY)
        # the parallel builds, which layers call above PARALLEL_FROM elements
        Z, b, out = X.copy(), dLdY[0].copy(), np.empty_like(X)
        dense.bias_activation_parallel(activations.TANH, 1.0, Z, b, out)
        dense.activation_backward_bias_parallel(activations.TANH, 1.0, Z, dLdY, out, b)
        # and the softmax activation's, from SERIAL_BELOW elements
        softmax.shift_rows(X, out)
        softmax.normalize_rows(out)
        softmax.softmax_rows_backward(out, dLdY, out)
    elif group == "training":
        from . import activations as public_activations
        from . import costs, layers, optimizers
        from .model import Model

        for optimizer in (optimizers.SGD(), optimizers.Adam()):
            net = Model()
            net.add(layers.Dense(units=4, activation=public_activations.ReLU()))
            net.add(layers.Dense(units=3, activation=public_activations.Softmax()))
            net.configure(input_size=3, cost_type=costs.CategoricalCrossentropy(),
                          optimizer=optimizer, dtype=dtype, seed=0)
            net.train(X, Y, epochs=1)
            net.forward(X)  # one step by hand too: the optimizer's own step
            net.backward(Y)
            optimizer.step(net.layers)
        # the parallel build of the update, which runs from optimizers.PARALLEL_FROM parameters
        w = np.ones(4, dtype=dtype)
        optimizer_kernels.update(optimizer_kernels.ADAM, 0.1, 0.9, 0.999, 1e-8, 1.0, 1.0, w,
                                 w.copy(), w.copy(), w.copy())
    elif group == "differences":
        loss = CrossEntropy()
        checks = [(TanH().forward, TanH().backward(X, dLdY), X, dLdY),
                  (SoftMax().forward, SoftMax().backward(X, dLdY), X, dLdY),
                  (lambda y_hat: loss.forward(Y, y_hat), loss.backward(Y, P), P, 1.0)]
        for name in ("tanh", "relu", "softmax"):
            layer = FullyConnected(3, activation=name, seed=0)
            layer.forward(X)
            layer.backward(dLdY)
            checks += [(layer.forward_with_param(key, X), layer.gradients[key],
                        layer.parameters[key], dLdY) for key in ("W", "b")]
        for fn, grad, x, dLdf in checks:
            check_gradients(fn, grad, x, dLdf, method="structured", progress=False)
        v = X.reshape(-1)
        signs = np.ones(v.size, dtype=np.int8)
        directions.perturb_along(v, signs, np.ones(v.size), np.ones(v.size), 1e-5,
                                 np.empty_like(v))
        directions.direction_norms(signs, np.ones(v.size), np.ones(v.size))
    else:
        m64 = np.full((2, 2), 0.5)
        widths = np.array([2, 2], dtype=np.int64)
        offsets = np.zeros(2, dtype=np.int64)
        codes = np.array([0, activations.TANH], dtype=np.int64)
        flat = np.ones(4)
        base = np.ones(2)
        model.sample_losses(losses.SQUARED_ERROR, m64, m64, base)
        central = np.empty((2, 2))
        model.model_differences(1, False, central.copy(), 0, widths, flat, offsets, flat,
                                offsets, np.ones(8), np.ones(8), np.array([0, 4]), codes,
                                np.zeros(2), losses.SQUARED_ERROR, m64,
                                np.zeros((0, 0, 0)), np.zeros((0, 0)), 0, 1e-4, False, 2,
                                central, central.copy())
        halves = np.full(4, 0.5)
        losses.loss_terms(losses.CROSS_ENTROPY, halves, halves, np.empty(4))


def warmup(dtypes=(np.float64, np.float32)):
    """Compile (or load from Numba's cache) every kernel for the given dtypes.

    Call it before timing anything: the first call of a kernel compiles it (seconds), later
    calls and later processes load it from the cache.

    Parameters
    ----------
    dtypes : sequence of dtype
        Float dtypes to compile for (float32, float64).

    Returns
    -------
    float
        Seconds spent.

    Raises
    ------
    TypeError
        If a dtype is not float32 or float64.
    """
    started = time.perf_counter()
    dtypes = [_float_dtype(dtype) for dtype in dtypes]
    for dtype in dtypes:
        for group in GROUPS:
            compile_group(group, dtype)
    _check_every_method(dtypes)
    return time.perf_counter() - started


def _check_every_method(dtypes):
    """A tiny black-box check per method: compiles what they call from Python (combine)."""
    from ._checker import check_gradients

    for dtype in dtypes:
        x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(2, 3)
        for method in ("exhaustive", "colored", "directional"):
            for order in (2, 4):
                check_gradients(np.sin, np.cos(x), x, method=method, order=order, progress=False,
                                seed=0)


class CompileNotice:
    """Say once, on stderr, when a check makes Numba compile one of fastgrad's kernels.

    A context manager; ``seconds`` is the time spent compiling fastgrad's kernels inside it.
    Loading a kernel from the cache is not a compile and prints nothing.
    """

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.seconds = 0.0
        self.kernels = set()
        self._started = None
        self._depth = 0
        self._listener = None

    def _on_start(self, event):
        self._depth += 1
        if self._depth > 1:
            return
        function = event.data["dispatcher"].py_func
        if not function.__module__.startswith("fastgrad.kernels"):
            return
        if not self.kernels:
            print(f"compiling fastgrad's Numba kernels for this machine, once: later runs load "
                  f"them from {_cache.cache_dir()} ...", file=self.stream, flush=True)
        self.kernels.add(f"{function.__module__.rsplit('.', 1)[-1]}.{function.__name__}")
        self._started = time.perf_counter()

    def _on_end(self, event):
        self._depth -= 1
        if self._depth == 0 and self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None

    def __enter__(self):
        from numba.core import event

        notice = self

        class _Listener(event.Listener):
            def on_start(self, event):
                notice._on_start(event)

            def on_end(self, event):
                notice._on_end(event)

        self._listener = _Listener()
        event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc_info):
        from numba.core import event

        event.unregister("numba:compile", self._listener)
        return None


class BackgroundCompile:
    """Compile some kernel groups in a second Python process while this one works.

    Numba compiles under one lock per process, so a second process is what uses a second
    core. Both share the on-disk cache: once the helper is done (``wait``), this process loads
    the kernels instead of compiling them. Nothing starts when the cache already holds them
    (a marker file written by a finished helper), or when the helper cannot start.
    """

    def __init__(self, jobs):
        self.jobs = [(group, np.dtype(dtype).name) for group, dtype in jobs]
        for group, dtype in self.jobs:
            _float_dtype(dtype)
            if group not in GROUPS:
                raise ValueError(f"jobs: unknown kernel group {group!r}")
        key = "_".join(f"{group}-{dtype}" for group, dtype in self.jobs)
        self.marker = _cache.cache_dir() / f"compiled_{key}.done"
        self.process = None

    def start(self):
        """Start the helper unless its kernels are already cached; return self."""
        if self.marker.exists() or not self.jobs:
            return self
        code = ("import sys; from fastgrad._warmup import _compile_jobs; "
                "_compile_jobs(sys.argv[1:])")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, *(f"{g}:{d}" for g, d in self.jobs)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            self.process = None  # this process compiles what it needs itself
        return self

    def wait(self):
        """Wait for the helper (if any); its failure only means this process compiles."""
        if self.process is not None:
            self.process.wait()
            self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        if self.process is not None and exc_info[0] is not None:
            self.process.kill()
        self.wait()
        return None


def _compile_jobs(specs):
    """Entry point of the helper process: ``group:dtype`` strings, then the marker file."""
    jobs = [tuple(spec.split(":")) for spec in specs]
    for group, dtype in jobs:
        compile_group(group, dtype)
    BackgroundCompile(jobs).marker.touch()
