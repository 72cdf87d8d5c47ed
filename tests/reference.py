"""Naive NumPy references, written for clarity rather than speed.

Nothing here imports fastgrad: these are the independent answers the kernels and the checker
are tested against. Everything is computed in float64.
"""

import numpy as np

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


def _sigmoid(x):
    # exp of a negative number only, so no overflow for |x| up to 1e3
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


# name -> (forward(x, alpha), derivative(x, alpha)); side by side so the math is easy to read
ACTIVATIONS = {
    "identity": (lambda x, a: x, lambda x, a: np.ones_like(x)),
    "sigmoid": (lambda x, a: _sigmoid(x), lambda x, a: _sigmoid(x) * (1 - _sigmoid(x))),
    "tanh": (lambda x, a: np.tanh(x), lambda x, a: 1 - np.tanh(x) ** 2),
    "relu": (lambda x, a: np.where(x > 0, x, 0.0), lambda x, a: np.where(x > 0, 1.0, 0.0)),
    "leaky_relu": (lambda x, a: np.where(x > 0, x, a * x), lambda x, a: np.where(x > 0, 1.0, a)),
    "elu": (lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
            lambda x, a: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0)))),
    "selu": (lambda x, a: SELU_LAMBDA * np.where(x > 0, x,
                                                 SELU_ALPHA * np.expm1(np.minimum(x, 0))),
             lambda x, a: SELU_LAMBDA * np.where(x > 0, 1.0,
                                                 SELU_ALPHA * np.exp(np.minimum(x, 0)))),
    "silu": (lambda x, a: x * _sigmoid(x),
             lambda x, a: _sigmoid(x) + x * _sigmoid(x) * (1 - _sigmoid(x))),
    "softplus": (lambda x, a: np.logaddexp(0.0, x), lambda x, a: _sigmoid(x)),
    "softsign": (lambda x, a: x / (1 + np.abs(x)), lambda x, a: 1 / (1 + np.abs(x)) ** 2),
    "arctan": (lambda x, a: np.arctan(x), lambda x, a: 1 / (1 + x**2)),
    "bent_identity": (lambda x, a: (np.sqrt(x**2 + 1) - 1) / 2 + x,
                      lambda x, a: x / (2 * np.sqrt(x**2 + 1)) + 1),
    "gaussian": (lambda x, a: np.exp(-(x**2)), lambda x, a: -2 * x * np.exp(-(x**2))),
    "piecewise_linear": (lambda x, a: np.clip(x / a, -1, 1),
                         lambda x, a: np.where(np.abs(x) < a, 1 / a, 0.0)),
}


def activation_forward(name, x, alpha=1.0):
    return ACTIVATIONS[name][0](np.asarray(x, dtype=np.float64), alpha)


def activation_backward(name, x, dLdY, alpha=1.0):
    return ACTIVATIONS[name][1](np.asarray(x, dtype=np.float64), alpha) * dLdY


def softmax_forward(x):
    x = np.asarray(x, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(x, dLdY):
    """Full Jacobian, built explicitly row by row: J = diag(s) - s s^T."""
    s = softmax_forward(x).reshape(-1, np.shape(x)[-1])
    d = np.asarray(dLdY, dtype=np.float64).reshape(s.shape)
    out = np.empty_like(s)
    for r in range(s.shape[0]):
        jacobian = np.diag(s[r]) - np.outer(s[r], s[r])
        out[r] = jacobian.T @ d[r]
    return out.reshape(np.shape(x))


def dense_forward(X, W, b, name, alpha=1.0):
    Z = np.asarray(X, np.float64) @ np.asarray(W, np.float64) + np.asarray(b, np.float64)
    return softmax_forward(Z) if name == "softmax" else activation_forward(name, Z, alpha)


def dense_backward(X, W, b, dLdY, name, alpha=1.0):
    """Return (dX, dW, db) by the chain rule, with plain loops over samples for db."""
    X = np.asarray(X, np.float64)
    Z = X @ np.asarray(W, np.float64) + np.asarray(b, np.float64)
    if name == "softmax":
        dZ = softmax_backward(Z, dLdY)
    else:
        dZ = activation_backward(name, Z, dLdY, alpha)
    db = np.zeros((1, Z.shape[1]))
    for row in dZ:
        db[0] += row
    return dZ @ np.asarray(W, np.float64).T, X.T @ dZ, db


def _xlogy(y, p):
    return np.where(y == 0, 0.0, y * np.log(np.where(y == 0, 1.0, p)))


# name -> (loss(Y, P), dloss/dP); each is averaged over the n_samples rows
LOSSES = {
    "cross_entropy": (lambda Y, P: -_xlogy(Y, P).sum() / len(P),
                      lambda Y, P: np.where(Y == 0, 0.0, -Y / P) / len(P)),
    "binary_cross_entropy": (
        lambda Y, P: -(_xlogy(Y, P) + _xlogy(1 - Y, 1 - P)).sum() / len(P),
        lambda Y, P: (np.where(Y == 0, 0.0, -Y / P) + np.where(Y == 1, 0.0, (1 - Y) / (1 - P)))
        / len(P)),
    "mse": (lambda Y, P: ((P - Y) ** 2).sum() / len(P), lambda Y, P: 2 * (P - Y) / len(P)),
    "mae": (lambda Y, P: np.abs(P - Y).sum() / len(P), lambda Y, P: np.sign(P - Y) / len(P)),
}


def loss_forward(name, Y, P):
    return float(LOSSES[name][0](np.asarray(Y, np.float64), np.asarray(P, np.float64)))


def loss_backward(name, Y, P):
    return LOSSES[name][1](np.asarray(Y, np.float64), np.asarray(P, np.float64))


def central_differences(f, x, dLdf=1.0, h=1e-6):
    """The seed-style loop: numerical gradient of sum(f(x) * dLdf), one element at a time."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        up = np.sum(np.asarray(f(x), dtype=np.float64) * dLdf)
        x[index] = old - h
        down = np.sum(np.asarray(f(x), dtype=np.float64) * dLdf)
        x[index] = old
        grad[index] = (up - down) / (2 * h)
    return grad


def perturb_along(x, signs, scale, grad, step):
    """A random-direction perturbation: the perturbed x, and the steps taken dotted with grad."""
    work = (x + step * signs * scale).astype(x.dtype)
    taken = work.astype(np.float64) - x.astype(np.float64)
    return work, float(np.sum(taken * grad))


def direction_norms(signs, scale, grad):
    """The two norms of a direction's tolerance: ||signs * scale * grad||, ||scale||."""
    return (float(np.linalg.norm(signs * scale * grad)), float(np.linalg.norm(scale)))


def richardson_and_kink(levels):
    """Order-4 value and kink indicator from ``levels = [(up, down, h_up, h_down)]`` at a step
    and at half of it (kernels.differences.combine, written out plainly).

    The indicator is the larger of ``|G(h) - r G(h/2)|`` (G the half disagreement of the
    one-sided slopes, r the ratio of the steps actually taken) and ``|D(h/2) - D(h)|``,
    less 8 float64 eps of ``|D(h/2)| + |G(h)|``, and never below 0.
    """
    (coarse, fine) = levels
    centrals = [(u + d) / (hu + hd) for u, d, hu, hd in levels]
    halves = [(u / hu - d / hd) / 2 for u, d, hu, hd in levels]
    ratio = (coarse[2] + coarse[3]) / (fine[2] + fine[3])
    correction = centrals[1] - centrals[0]
    raw = max(abs(halves[0] - ratio * halves[1]), abs(correction))
    rounding = 8 * np.finfo(np.float64).eps * (abs(centrals[1]) + abs(halves[0]))
    return centrals[1] + correction / 3, max(raw - rounding, 0.0)
