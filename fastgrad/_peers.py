"""Other gradient checkers, run on the same function for ``fastgrad bench`` (optional).

Each peer gets the scalar ``g(v) = sum(fn(v) * dLdf)`` of the case and its analytic gradient.
None of these packages is needed by fastgrad itself: install them with
``pip install ".[compare]"``. Where a peer would run longer than the budget, its time is
estimated from the measured cost of one call of ``g`` times the calls it makes, and marked so.
"""

import importlib.util
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class PeerTiming:
    """Time of one peer on one case; ``estimated`` when not run to the end."""

    seconds: float
    estimated: bool
    error: float  # largest |numerical - analytic| it reports, NaN when it reports none
    note: str = ""


def installed():
    """Which optional peers can be imported."""
    return {"scipy": importlib.util.find_spec("scipy") is not None,
            "torch": importlib.util.find_spec("torch") is not None}


def _scalar(fn, x, dLdf):
    shape = np.shape(x)
    weights = np.asarray(dLdf, dtype=np.float64)

    def g(v):
        return float(np.sum(np.asarray(fn(np.reshape(v, shape)), dtype=np.float64) * weights))

    return g


def _call_cost(g, v):
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        g(v)
        best = min(best, time.perf_counter() - started)
    return best


def _run_or_estimate(n_calls, g, v, budget_s, run):
    estimate = n_calls * _call_cost(g, v)
    if estimate > budget_s:
        return PeerTiming(estimate, True, float("nan"), f"~{n_calls} calls of fn")
    started = time.perf_counter()
    error = run()
    return PeerTiming(time.perf_counter() - started, False, error)


def scipy_check_grad(fn, grad, x, dLdf, budget_s):
    """``scipy.optimize.check_grad`` (forward differences; returns a norm, reported as is)."""
    from scipy.optimize import check_grad

    g = _scalar(fn, x, dLdf)
    v = np.asarray(x, dtype=np.float64).ravel()
    flat_grad = np.asarray(grad, dtype=np.float64).ravel()
    return _run_or_estimate(v.size + 1, g, v, budget_s,
                            lambda: float(check_grad(g, lambda _: flat_grad, v)))


def scipy_approx_derivative(fn, grad, x, dLdf, budget_s):
    """``scipy.optimize.approx_derivative`` with 3-point (central) differences."""
    from scipy.optimize._numdiff import approx_derivative

    g = _scalar(fn, x, dLdf)
    v = np.asarray(x, dtype=np.float64).ravel()
    flat_grad = np.asarray(grad, dtype=np.float64).ravel()

    def run():
        numerical = approx_derivative(g, v, method="3-point")
        return float(np.max(np.abs(numerical - flat_grad)))

    return _run_or_estimate(2 * v.size, g, v, budget_s, run)


def torch_gradcheck(fn, grad, x, dLdf, budget_s, *, fast_mode):
    """``torch.autograd.gradcheck`` on ``g`` wrapped as an autograd Function.

    The Function's backward returns ``grad_output * grad`` (the analytic gradient being
    checked), so torch compares the same two quantities fastgrad does.
    """
    import torch

    g = _scalar(fn, x, dLdf)
    v = np.asarray(x, dtype=np.float64).ravel()
    flat_grad = torch.from_numpy(np.asarray(grad, dtype=np.float64).ravel().copy())

    class Wrapped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return torch.tensor(g(t.detach().numpy()), dtype=torch.float64)

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * flat_grad

    def run():
        tensor = torch.from_numpy(v.copy()).requires_grad_(True)
        ok = torch.autograd.gradcheck(Wrapped.apply, (tensor,), eps=1e-6, atol=1e-5,
                                      rtol=1e-3, raise_exception=False, fast_mode=fast_mode)
        return 0.0 if ok else float("inf")

    n_calls = 4 if fast_mode else 2 * v.size
    timing = _run_or_estimate(n_calls, g, v, budget_s, run)
    timing.note = timing.note or "error column: 0 when gradcheck passed, inf when it failed"
    return timing


PEERS = {
    "scipy check_grad": ("scipy", scipy_check_grad),
    "scipy approx_derivative": ("scipy", scipy_approx_derivative),
    "torch gradcheck": ("torch", lambda *a: torch_gradcheck(*a, fast_mode=False)),
    "torch gradcheck fast": ("torch", lambda *a: torch_gradcheck(*a, fast_mode=True)),
}
