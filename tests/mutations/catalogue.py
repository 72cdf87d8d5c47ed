"""Realistic backprop bugs, each a small wrong backward next to its correct twin.

A ``Case`` builds, for a seed, dtype and shape, the function being checked and two gradients:
the correct one and the mutated one. Every method that applies must catch every mutation and
pass every correct twin (``tests/test_reliability.py``). The forward functions are fastgrad's
own where the bug is in a hand-written backward of a fastgrad object (so the structured method
applies), and plain NumPy black boxes otherwise.
"""

from dataclasses import dataclass, field

import numpy as np

from fastgrad import activations, costs, losses

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


@dataclass
class Case:
    name: str
    build: object          # build(rng, dtype, shape) -> (fn, x, dLdf, correct, wrong)
    structured: bool       # fn is fastgrad's own: the structured method applies
    square: bool = False   # needs n_rows == n_cols to keep shapes right
    dtypes: tuple = ("float64", "float32")
    #: The Jacobian has axis structure (colored applies); losses map to a scalar.
    sparse: bool = True
    #: Shape of the bug checks when the bug needs size to show (None: the suite's default).
    bug_shape: tuple = None
    #: Shapes of the twin checks (None: the suite's TWIN_SHAPES).
    twin_shapes: tuple = None
    #: Options passed to check_gradients (an explicit step h).
    options: dict = field(default_factory=dict)
    #: Methods the bug is checked with (None: every one that applies).
    bug_methods: tuple = None
    #: Methods whose result on the correct twin may be inconclusive (never failed): x on
    #: kinks everywhere leaves a directional search nothing it can resolve.
    inconclusive_ok: tuple = ()


def _activation(activation, wrong_derivative, *, away_from_kinks=False):
    def build(rng, dtype, shape, near_kinks=False):
        x = rng.normal(scale=2.0, size=shape)
        if away_from_kinks and not near_kinks:
            x = np.where(np.abs(x) < 0.05, 0.5, x)
        if near_kinks:  # exact kinks and points within a step of them
            x.flat[::3] = 0.0
            x.flat[1::5] = 1e-9
            x.flat[2::7] = -1e-9
        x = x.astype(dtype)
        dLdY = rng.normal(size=shape).astype(dtype)
        correct = activation.backward(x, dLdY)
        wrong = (wrong_derivative(x.astype(np.float64)) * dLdY).astype(dtype)
        return activation.forward, x, dLdY, correct, wrong
    return build


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_case(wrong_backward):
    softmax = activations.SoftMax()

    def build(rng, dtype, shape, near_kinks=False):
        # large-magnitude logits where checking near kinks is asked for
        x = rng.normal(scale=50.0 if near_kinks else 2.0, size=shape).astype(dtype)
        dLdY = rng.normal(size=shape).astype(dtype)
        wrong = wrong_backward(x.astype(np.float64), dLdY.astype(np.float64)).astype(dtype)
        return softmax.forward, x, dLdY, softmax.backward(x, dLdY), wrong
    return build


def _saturated_class_case():
    """Softmax rows whose first class holds all but ~1e-8 (float64) or ~1e-3 (float32): its
    gradient s_0 (g_0 - s @ g) cancels to that fraction of its three terms; one row's is off
    by 0.5% (float32: 5%)."""
    softmax = activations.SoftMax()

    def build(rng, dtype, shape, near_kinks=False):
        x = rng.normal(size=shape)
        x[:, 0] += 20.0 if dtype == np.float64 else 8.0
        x = x.astype(dtype)
        dLdY = rng.normal(size=shape).astype(dtype)
        correct = softmax.backward(x, dLdY)
        wrong = correct.copy()
        wrong[0, 0] *= 1.005 if dtype == np.float64 else 1.05
        return softmax.forward, x, dLdY, correct, wrong
    return build


def _layer_norm(v, gamma, beta, eps=1e-5):
    mean = v.mean(axis=-1, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    return (v - mean) / np.sqrt(var + eps) * gamma + beta


def _layer_norm_dx_case():
    """LayerNorm's dx without the ``- x_hat mean(dx_hat x_hat)`` term (an 8 x 32 batch)."""
    def build(rng, dtype, shape, near_kinks=False):
        X = rng.normal(loc=0.5, scale=2.0, size=(8, 32)).astype(dtype)
        gamma, beta = rng.normal(size=32).astype(dtype), rng.normal(size=32).astype(dtype)
        dLdY = rng.normal(size=X.shape).astype(dtype)
        x = X.astype(np.float64)
        inv_std = 1 / np.sqrt(x.var(axis=-1, keepdims=True) + 1e-5)
        x_hat = (x - x.mean(axis=-1, keepdims=True)) * inv_std
        dx_hat = dLdY * gamma.astype(np.float64)
        centred = dx_hat - dx_hat.mean(axis=-1, keepdims=True)
        correct = inv_std * (centred - x_hat * (dx_hat * x_hat).mean(axis=-1, keepdims=True))

        def fn(v):
            return _layer_norm(v, gamma, beta)

        return fn, X, dLdY, correct.astype(dtype), (inv_std * centred).astype(dtype)
    return build


def _embedding_case():
    """An embedding lookup with repeated indices: dE[idx] = dY overwrites where it should
    accumulate (np.add.at)."""
    def build(rng, dtype, shape, near_kinks=False):
        E = rng.normal(size=(20, 8)).astype(dtype)
        idx = rng.integers(0, 20, size=30)
        dLdY = rng.normal(size=(30, 8)).astype(dtype)
        correct = np.zeros_like(E)
        np.add.at(correct, idx, dLdY)
        wrong = np.zeros_like(E)
        wrong[idx] = dLdY

        def fn(e):
            return e[..., idx, :]

        return fn, E, dLdY, correct, wrong
    return build


def _ignore_index_case():
    """Mean NLL of log-softmax with ignored targets (-100): divided by all 16 rows instead of
    the 15 counted ones (6.7%)."""
    def build(rng, dtype, shape, near_kinks=False):
        Z = rng.normal(scale=2.0, size=(16, 7)).astype(dtype)
        y = rng.integers(0, 7, size=16)
        y[3] = -100
        rows = np.flatnonzero(y >= 0)

        def fn(v):
            top = v.max(axis=-1, keepdims=True)
            log_p = v - top - np.log(np.exp(v - top).sum(axis=-1, keepdims=True))
            return -log_p[..., rows, y[rows]].sum(axis=-1) / rows.size

        p = _softmax(Z.astype(np.float64))
        target = np.zeros_like(p)
        target[rows, y[rows]] = 1.0
        counted = (y >= 0)[:, None]
        return (fn, Z, 1.0, ((p - target) * counted / rows.size).astype(dtype),
                ((p - target) * counted / y.size).astype(dtype))
    return build


def _python_float_loss_case():
    """A float32 model's loss returned as a Python float (``.item()``): softmax regression,
    the largest element of dW 5% off (float32 differences: rtol 1e-2)."""
    def build(rng, dtype, shape, near_kinks=False):
        X = rng.normal(size=(16, 6)).astype(np.float32)
        W = (rng.normal(size=(6, 5)) / 2).astype(dtype)
        y = rng.integers(0, 5, size=16)

        def fn(w):
            z = X @ np.asarray(w, dtype=np.float32)
            top = z.max(axis=-1, keepdims=True)
            return float((top[:, 0] + np.log(np.exp(z - top).sum(axis=-1))
                          - z[np.arange(16), y]).mean())

        x64 = X.astype(np.float64)
        p = _softmax(x64 @ W.astype(np.float32).astype(np.float64))
        p[np.arange(16), y] -= 1.0
        correct = x64.T @ p / 16
        wrong = correct.copy()
        wrong[np.unravel_index(np.argmax(np.abs(correct)), correct.shape)] *= 1.05
        return fn, W, 1.0, correct.astype(dtype), wrong.astype(dtype)
    return build


def _loss_case(loss, wrong_backward, labels):
    def build(rng, dtype, shape, near_kinks=False):
        P = rng.uniform(0.05, 0.95, size=shape)
        if labels == "one_hot":
            P /= P.sum(axis=1, keepdims=True)
            Y = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
        elif labels == "binary":
            Y = rng.integers(0, 2, size=shape).astype(float)
        else:
            Y = rng.normal(size=shape)
            if near_kinks:  # |y - p| at its kink for some elements
                Y.flat[::4] = P.flat[::4].astype(dtype)
        P = P.astype(dtype)
        correct = loss.backward(Y, P)
        wrong = wrong_backward(Y, P.astype(np.float64)).astype(dtype)

        def fn(p, loss=loss, Y=Y):
            return loss.forward(Y, p)

        return fn, P, 1.0, correct, wrong
    return build


class DenseLayer:
    """A user's dense layer ``Y = tanh(X @ W + b)``: a black box for fastgrad."""

    def __init__(self, X, b):
        self.X = X
        self.b = b

    def __call__(self, W):
        return np.tanh(self.X @ W + self.b)


def _dense_case(mutate):
    def build(rng, dtype, shape, near_kinks=False):
        n_in, n_out = shape
        n_samples = max(n_in, n_out)  # square layers keep a transposed dW the same shape
        X = rng.normal(size=(n_samples, n_in)).astype(dtype)
        W = (rng.normal(size=shape) / np.sqrt(n_in)).astype(dtype)
        b = rng.normal(size=n_out).astype(dtype)
        dLdY = rng.normal(size=(n_samples, n_out)).astype(dtype)
        Z = X.astype(np.float64) @ W + b
        dZ = (1 - np.tanh(Z) ** 2) * dLdY
        correct = (X.T @ dZ).astype(dtype)
        wrong = mutate(X.astype(np.float64), Z, dZ, correct.astype(np.float64)).astype(dtype)
        return DenseLayer(X, b), W, dLdY, correct, wrong
    return build


def _bias_case(mutate):
    """Checks b of ``tanh(X @ W + b)`` (shape (1, n_out))."""
    def build(rng, dtype, shape, near_kinks=False):
        n_samples, n_out = shape
        X = rng.normal(size=(n_samples, 3)).astype(dtype)
        W = rng.normal(size=(3, n_out)).astype(dtype)
        b = rng.normal(size=(1, n_out)).astype(dtype)
        dLdY = rng.normal(size=(n_samples, n_out)).astype(dtype)
        dZ = (1 - np.tanh(X.astype(np.float64) @ W + b) ** 2) * dLdY
        correct = dZ.sum(axis=0, keepdims=True).astype(dtype)
        wrong = mutate(dZ, correct.astype(np.float64)).astype(dtype)

        def fn(value, X=X, W=W):
            return np.tanh(X @ W + value)

        return fn, b, dLdY, correct, wrong
    return build


def _corrupt_element(g):
    out = g.copy()
    out.flat[out.size // 2] += 0.5 + abs(out.flat[out.size // 2])
    return out


def _corrupt_row(g):
    out = g.copy()
    out[out.shape[0] // 2] += 0.5 + np.abs(out[out.shape[0] // 2])
    return out


def _running_sum(dtype):
    """db accumulated one sample at a time in a narrow float type."""
    def mutate(dZ, correct):
        total = np.zeros(dZ.shape[1], dtype=dtype)
        for row in dZ.astype(dtype):
            total = (total + row).astype(dtype)
        return total.reshape(1, -1).astype(np.float64)
    return mutate


def _relu_input_case():
    """``tanh(relu(x) @ A)`` with x itself a ReLU output: about half of x exactly 0."""
    def build(rng, dtype, shape, near_kinks=False):
        x = np.maximum(rng.normal(size=shape), 0.0)
        x.flat[0] = abs(x.flat[0]) + 0.1  # at least one element off its kink
        x = x.astype(dtype)
        A = (rng.normal(size=(shape[1], 6)) / np.sqrt(shape[1])).astype(dtype)
        G = rng.normal(size=(shape[0], 6)).astype(dtype)

        def fn(v, A=A):
            return np.tanh(np.maximum(v, 0) @ A.astype(v.dtype))

        t = np.tanh(np.maximum(x.astype(np.float64), 0) @ A)
        correct = (((1 - t**2) * G) @ A.T * (x > 0)).astype(dtype)  # relu'(0) = 0
        wrong = correct.astype(np.float64)
        wrong.flat[0] += 0.5 + abs(wrong.flat[0])
        return fn, x, G, correct, wrong.astype(dtype)
    return build


def _explicit_step_case(h, single=False):
    """np.tanh checked at a step the caller gives; the error is 10x the float32 rtol."""
    def build(rng, dtype, shape, near_kinks=False):
        x = rng.uniform(0.2, 1.0, size=shape).astype(dtype)
        dLdY = rng.normal(size=shape).astype(dtype)
        correct = ((1 - np.tanh(x.astype(np.float64)) ** 2) * dLdY).astype(dtype)
        wrong = correct.astype(np.float64)
        if single:
            wrong.flat[wrong.size // 2] *= 1 + 1e-3
        else:
            wrong *= 1 + 1e-3
        return np.tanh, x, dLdY, correct, wrong.astype(dtype)
    return build


def _large_float32_case():
    def build(rng, dtype, shape, near_kinks=False):
        x = rng.uniform(1e6, 2e6, size=shape).astype(dtype)
        g = rng.normal(size=shape).astype(dtype)
        correct = (0.5 / np.sqrt(x.astype(np.float64)) * g).astype(dtype)
        return np.sqrt, x, g, correct, (2 * correct).astype(dtype)
    return build


def _saturated_logits_case():
    """Per-element ``max(z, 0) - z y + log1p(exp(-|z|))``: a loss of ~1e-13 from logits of 30
    rounds at 30, not at its own size."""
    def build(rng, dtype, shape, near_kinks=False):
        z = rng.normal(size=shape) * 2
        z.flat[::2] = np.sign(rng.normal(size=z.flat[::2].size)) * rng.uniform(
            20, 40, size=z.flat[::2].size)
        y = rng.integers(0, 2, size=shape).astype(np.float64)
        z = z.astype(dtype)

        def fn(v, y=y):
            yv = y.astype(v.dtype)
            return np.maximum(v, 0) - v * yv + np.log1p(np.exp(-np.abs(v)))

        # a stable sigmoid: 0.5 * (1 + tanh(z / 2)) loses all digits of 1e-16 at z = -37, and
        # with nothing else in x to set a scale that 5% error is what the element is
        z64 = z.astype(np.float64)

        def stable_sigmoid(t):
            return np.where(t >= 0, 1 / (1 + np.exp(-np.abs(t))),
                            np.exp(-np.abs(t)) / (1 + np.exp(-np.abs(t))))

        sigmoid = stable_sigmoid(z64)
        # sigmoid(z) - y without cancellation: for y = 1 it is -sigmoid(-z). (sigmoid(z) - 1
        # computed as written is off by eps in absolute terms, which at z = 30 is 1e-4 of the
        # element, and a lone element has no other scale to excuse that: the numerical value,
        # checked against long double, is the accurate one there.)
        correct = np.where(y == 1, -stable_sigmoid(-z64), sigmoid).astype(dtype)
        wrong = ((1 - sigmoid) - y).astype(dtype)  # sigmoid(-z)
        return fn, z, 1.0, correct, wrong
    return build


def _ties_case():
    """2x2 max-pool over an even-sized x with exact ties in many windows."""
    def build(rng, dtype, shape, near_kinks=False):
        rows, cols = 2 * max(1, shape[0] // 2), 2 * max(1, shape[1] // 2)
        rows, cols = min(rows, 8), min(cols, 8)
        x = (rng.integers(0, 3, size=(rows, cols)) / 2.0).astype(dtype)
        dy = rng.normal(size=(rows // 2, cols // 2)).astype(dtype)

        def fn(v, rows=rows, cols=cols):
            lead = v.shape[:-2]
            return v.reshape(*lead, rows // 2, 2, cols // 2, 2).max(axis=(-3, -1))

        windows = x.reshape(rows // 2, 2, cols // 2, 2).transpose(0, 2, 1, 3)
        windows = windows.reshape(rows // 2, cols // 2, 4)
        is_max = windows == windows.max(-1, keepdims=True)

        def routed(route):
            out = (route * dy[..., None]).reshape(rows // 2, cols // 2, 2, 2)
            return out.transpose(0, 2, 1, 3).reshape(rows, cols).astype(dtype)

        return (fn, x, dy, routed(np.eye(4)[windows.argmax(-1)]),
                routed(is_max.astype(float)))
    return build


def _float32_ties_case():
    """Max-pool over pairs of a ReLU output (exact zeros: tied windows), in a fn that casts
    its input to float32 (differences in float32, whose rounding swamped the joint test of
    the tied elements at its finest step)."""
    def build(rng, dtype, shape, near_kinks=False):
        rows, cols = shape[0], 2 * max(1, shape[1] // 2)
        x = np.maximum(rng.normal(size=(rows, cols)), 0.0).astype(dtype)
        x[0, :2] = 0.0  # at least one tied window
        dy = rng.normal(size=(rows, cols // 2)).astype(dtype)

        def fn(v, rows=rows, cols=cols):
            v = np.asarray(v, np.float32)
            return v.reshape(*v.shape[:-2], rows, cols // 2, 2).max(axis=-1)

        pairs = x.reshape(rows, cols // 2, 2)
        first = np.eye(2)[pairs.argmax(-1)]
        every = (pairs == pairs.max(-1, keepdims=True)).astype(float)
        return (fn, x, dy, (first * dy[..., None]).reshape(rows, cols).astype(dtype),
                (every * dy[..., None]).reshape(rows, cols).astype(dtype))
    return build


def _mlp_loss_case():
    """Mean cross-entropy of a 6-5-3 ReLU MLP as one scalar function of its flat weights."""
    def build(rng, dtype, shape, near_kinks=False):
        n_samples, n_in, n_hidden, n_out = 8, 6, 5, 3
        X = rng.normal(size=(n_samples, n_in))
        labels = rng.integers(0, n_out, n_samples)
        theta = np.concatenate([rng.normal(size=n_in * n_hidden) / np.sqrt(n_in),
                                rng.normal(size=n_hidden * n_out) / np.sqrt(n_hidden)])
        split = n_in * n_hidden

        def fn(t):
            W1 = t[..., :split].reshape(*t.shape[:-1], n_in, n_hidden)
            W2 = t[..., split:].reshape(*t.shape[:-1], n_hidden, n_out)
            z = np.maximum(X.astype(t.dtype) @ W1, 0) @ W2
            z = z - z.max(axis=-1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
            return -log_p[..., np.arange(n_samples), labels].mean(axis=-1)

        W1, W2 = theta[:split].reshape(n_in, n_hidden), theta[split:].reshape(n_hidden, n_out)
        pre = X @ W1
        hidden = np.maximum(pre, 0)
        p = np.exp(hidden @ W2 - (hidden @ W2).max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(n_samples), labels] -= 1
        dz = p / n_samples
        correct = np.concatenate([(X.T @ ((dz @ W2.T) * (pre > 0))).ravel(),
                                  (hidden.T @ dz).ravel()])
        wrong = correct.copy()
        wrong[split + 2] += 0.5 + abs(wrong[split + 2])
        return fn, theta.astype(dtype), 1.0, correct.astype(dtype), wrong.astype(dtype)
    return build


def _offset_case(offset):
    """A dense layer whose outputs sit on a large constant: the outputs' size is no unit for
    the gradient's allowance."""
    def build(rng, dtype, shape, near_kinks=False):
        n_in, n_out = shape
        X = rng.normal(size=(max(n_in, n_out, 4), n_in)).astype(dtype)
        W = rng.normal(size=shape).astype(dtype)
        dY = rng.normal(size=(X.shape[0], n_out)).astype(dtype)

        def fn(w, X=X):
            return X.astype(w.dtype) @ w + offset

        correct = (X.astype(np.float64).T @ dY).astype(dtype)
        wrong = correct.astype(np.float64)
        index = np.argmax(np.abs(wrong))
        wrong.flat[index] *= 1.001
        return fn, W, dY, correct, wrong.astype(dtype)
    return build


def _constant_loss_case(constant):
    """A mean-squared error carrying a large constant (a running total, N/2 log(2 pi sigma^2)):
    the first step's floor is ~1e3 x rtol |a|: only a coarser step resolves the elements."""
    def build(rng, dtype, shape, near_kinks=False):
        X, y, w = rng.normal(size=(32, 8)), rng.normal(size=32), rng.normal(size=8)

        def fn(v):
            r = np.tensordot(v, X.T.astype(v.dtype), axes=(-1, 0)) - y.astype(v.dtype)
            return constant + 0.5 * (r ** 2).mean(axis=-1)

        correct = X.T @ (X @ w - y) / 32
        wrong = correct.copy()
        wrong[np.argmax(np.abs(wrong))] *= 1.0005
        return fn, w.astype(dtype), 1.0, correct.astype(dtype), wrong.astype(dtype)
    return build


def _confident_bce_case():
    """Textbook binary cross-entropy on sigmoid outputs at confident wrong predictions
    (|logit| 10 to 15): 1 - p cancels, finer steps round more than the loss shows."""
    def build(rng, dtype, shape, near_kinks=False):
        z = rng.uniform(10.0, 15.0, size=6) * rng.choice([-1.0, 1.0], size=6)
        y = (z < 0).astype(np.float64)  # every prediction confidently wrong

        def fn(v):
            p = 1 / (1 + np.exp(-v))
            return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=-1)

        correct = (1 / (1 + np.exp(-z)) - y) / z.size
        wrong = correct.copy()
        wrong[np.argmax(np.abs(wrong))] *= 1.01
        return fn, z.astype(dtype), 1.0, correct.astype(dtype), wrong.astype(dtype)
    return build


def _unscaled_feature_case():
    """Linear regression with an unscaled feature (an income in dollars) and an intercept:
    the feature weight's curvature and size excused the intercept's sign."""
    def build(rng, dtype, shape, near_kinks=False):
        n = 200
        F = np.stack([np.ones(n), rng.uniform(20, 70, n), rng.uniform(2e4, 2e5, n)], 1)
        w = np.array([0.5, 0.01, 2e-6])
        y = F @ w + 0.1 * rng.normal(size=n)
        w = (w * (1 + 0.05 * rng.normal(size=3))).astype(dtype).astype(np.float64)

        def fn(v):
            r = np.tensordot(v, F.T.astype(v.dtype), axes=(-1, 0)) - y.astype(v.dtype)
            return (r ** 2).mean(axis=-1)

        correct = 2 * F.T @ (F @ w - y) / n
        wrong = correct * np.array([-1.0, 1.0, 1.0])
        return fn, w.astype(dtype), 1.0, correct.astype(dtype), wrong.astype(dtype)
    return build


CASES = [
    Case("sigmoid derivative at the output, f'(y) not f'(x)",
         _activation(activations.Sigmoid(),
                     lambda x: _sigmoid(_sigmoid(x)) * (1 - _sigmoid(_sigmoid(x)))), True),
    Case("tanh derivative at the output, f'(y) not f'(x)",
         _activation(activations.TanH(), lambda x: 1 - np.tanh(np.tanh(x)) ** 2), True),
    Case("ReLU slope on the negative side", _activation(
        activations.ReLU(), lambda x: np.where(x > 0, 1.0, 0.01), away_from_kinks=True), True,
         inconclusive_ok=("directional",)),
    Case("LeakyReLU slope alpha on the positive side", _activation(
        activations.LeakyReLU(0.1), lambda x: np.where(x > 0, 0.1, 0.1),
        away_from_kinks=True), True,
         inconclusive_ok=("directional",)),
    Case("ELU derivative without alpha", _activation(
        activations.ELU(0.5), lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))),
        away_from_kinks=True), True,
         inconclusive_ok=("directional",)),
    Case("SELU with lambda 1.05 in backward", _activation(
        activations.SELU(), lambda x: 1.05 * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(
            np.minimum(x, 0))), away_from_kinks=True), True,
         inconclusive_ok=("directional",)),
    Case("softplus derivative exp(x)", _activation(activations.Softplus(), np.exp), True),
    Case("gaussian derivative missing the 2", _activation(
        activations.Gaussian(), lambda x: -x * np.exp(-(x**2))), True),
    Case("sign error in the tanh derivative", _activation(
        activations.TanH(), lambda x: -(1 - np.tanh(x) ** 2)), True),
    Case("softmax backward with the Jacobian diagonal only",
         _softmax_case(lambda x, d: _softmax(x) * (1 - _softmax(x)) * d), True,
         # a float32 backward at logits of scale 50 as a black box: its rounding of the
         # upstream gradient cannot be told from an error (inconclusive, never failed)
         inconclusive_ok=("exhaustive", "colored", "directional")),
    Case("softmax backward summing over samples, not classes",
         _softmax_case(lambda x, d: _softmax(x) * (d - np.sum(d * _softmax(x), axis=0))), True,
         # a float32 backward at logits of scale 50 as a black box: its rounding of the
         # upstream gradient cannot be told from an error (inconclusive, never failed)
         inconclusive_ok=("exhaustive", "colored", "directional")),
    # found by independent adversaries: real layers, and a float32 model behind a float
    Case("LayerNorm dx without the x_hat mean(dx_hat x_hat) term", _layer_norm_dx_case(),
         False, bug_shape=(1, 1), twin_shapes=((1, 1),)),
    Case("embedding lookup with repeated indices: dE[idx] = dY overwrites", _embedding_case(),
         False, sparse=False, bug_shape=(1, 1), twin_shapes=((1, 1),),
         bug_methods=("exhaustive", "directional")),
    Case("NLL with ignored targets divided by every row, not the counted ones",
         _ignore_index_case(), False, sparse=False, bug_shape=(1, 1), twin_shapes=((1, 1),)),
    Case("a float32 model's loss returned as a Python float: one element of dW 5% off",
         _python_float_loss_case(), False, sparse=False, bug_shape=(1, 1),
         twin_shapes=((1, 1),)),
    # (as a black box, these rows' gradient is ~1e-8 of the loss's size: differences cannot
    # resolve it to rtol, and the twin is inconclusive there; fastgrad's own kernel can)
    Case("saturated softmax: the dominant class 0.5% off in one row", _saturated_class_case(),
         True, bug_methods=("structured",),
         inconclusive_ok=("exhaustive", "colored", "directional"),
         # (a 512 x 512 directional search that ends inconclusive costs a minute a seed)
         twin_shapes=((1, 3), (2, 3), (8, 8), (32, 32))),
    Case("cross-entropy missing 1/m", _loss_case(
        losses.CrossEntropy(), lambda Y, P: np.where(Y == 0, 0.0, -Y / P), "one_hot"), True,
         sparse=False),
    Case("cross-entropy with 1/m applied twice", _loss_case(
        losses.CrossEntropy(), lambda Y, P: np.where(Y == 0, 0.0, -Y / P) / len(P) ** 2,
        "one_hot"), True, sparse=False),
    Case("binary cross-entropy with the wrong sign on (1-y)/(1-p)", _loss_case(
        costs.internal_loss(costs.BinaryCrossentropy()),
        lambda Y, P: (np.where(Y == 0, 0.0, -Y / P) - np.where(Y == 1, 0.0, (1 - Y) / (1 - P)))
        / len(P), "binary"), True, sparse=False),
    Case("MSE gradient missing the factor 2", _loss_case(
        costs.internal_loss(costs.MSE()), lambda Y, P: (P - Y) / len(P), "real"), True,
         sparse=False),
    Case("MAE gradient with the sign flipped", _loss_case(
        costs.internal_loss(costs.MAE()), lambda Y, P: np.sign(Y - P) / len(P), "real"), True,
         sparse=False, inconclusive_ok=("directional",)),
    Case("dW transposed (square layer)", _dense_case(lambda X, Z, dZ, g: g.T), False, True),
    Case("dW from the activated output instead of the input", _dense_case(
        lambda X, Z, dZ, g: np.tanh(Z).T @ dZ), False, True),
    Case("dW without the activation derivative", _dense_case(
        lambda X, Z, dZ, g: X.T @ (dZ / (1 - np.tanh(Z) ** 2))), False, True),
    Case("one element of dW corrupted", _dense_case(lambda X, Z, dZ, g: _corrupt_element(g)),
         False),
    Case("one row of dW corrupted", _dense_case(lambda X, Z, dZ, g: _corrupt_row(g)), False),
    Case("db summed over features instead of samples", _bias_case(
        lambda dZ, g: np.resize(dZ.sum(axis=1), g.size).reshape(g.shape)), False, True),
    Case("bias gradient missing (zeros)", _bias_case(lambda dZ, g: np.zeros_like(g)), False),
    Case("db accumulated in float16 one sample at a time", _bias_case(_running_sum(np.float16)),
         False),
    # a float32 running sum is a bug next to a float64 gradient (in float32 it is the norm)
    Case("db accumulated in float32 for a float64 layer", _bias_case(_running_sum(np.float32)),
         False, dtypes=("float64",), bug_shape=(50_000, 5)),
    # the classes an independent catalogue found wrong verdicts in
    Case("one element off under kinks of the input (tanh(relu(x) @ A), x a ReLU output)",
         _relu_input_case(), False, inconclusive_ok=("directional",),
         bug_methods=("exhaustive", "colored")),
    Case("explicit step h=1e-2: tanh derivative 1e-3 too large", _explicit_step_case(1e-2),
         False, options={"h": 1e-2}),
    # (a single element 1e-3 off is below what directional resolves among P in float32)
    Case("explicit step h=1e-3 (second order): one element 1e-3 too large",
         _explicit_step_case(1e-3, single=True), False, options={"h": 1e-3, "order": 2},
         bug_methods=("exhaustive", "colored")),
    Case("float32 sqrt of values near 1e6: gradient doubled", _large_float32_case(), False,
         dtypes=("float32",)),
    # (a float32 gradient of 262,144 saturated logits: blocks of a direction resolve a
    # one-element error of only 3-4% of the largest, not the 1% a directional pass promises,
    # so directional says inconclusive there, and auto falls back to a complete method)
    Case("saturated logits, stable cross-entropy with logits: sigmoid of -z in backward",
         _saturated_logits_case(), False, inconclusive_ok=("directional",)),
    Case("max-pool with ties: every tied maximum given the upstream gradient", _ties_case(),
         False, sparse=False, bug_methods=("exhaustive",), inconclusive_ok=("directional",)),
    # (x on kinks by construction: a tie whose upstream gradient is within float32's floor
    # is a kink or a wrong value alike, and its correct twin may be inconclusive, not failed)
    Case("float32 max-pool of pairs over ReLU zeros: every tied maximum given the gradient",
         _float32_ties_case(), False, dtypes=("float32",), bug_methods=("exhaustive", "colored"),
         twin_shapes=((1, 1), (2, 3), (8, 8), (32, 32)),
         inconclusive_ok=("directional", "colored", "exhaustive")),
    Case("a ReLU MLP's loss as one plain function: one weight off", _mlp_loss_case(), False,
         sparse=False, bug_methods=("exhaustive",), inconclusive_ok=("directional",)),
    Case("float32 dense layer with outputs offset by 1e3: one element 1.001x",
         _offset_case(1e3), False, dtypes=("float32",)),
    Case("float64 dense layer with outputs offset by 1e5: one element 1.001x",
         _offset_case(1e5), False, dtypes=("float64",)),
    Case("a loss carrying a constant of 1e6: one element 0.05% off", _constant_loss_case(1e6),
         False, sparse=False, dtypes=("float64",), bug_shape=(1, 1)),
    # (directional: a direction's noise at these logits can leave its search without a
    # single element to blame)
    Case("textbook BCE at confident wrong logits: one element 1% off", _confident_bce_case(),
         False, sparse=False, bug_shape=(1, 1), inconclusive_ok=("directional",)),
    # (directional: the intercept's error is below rtol times the direction's norm, which the
    # unscaled feature's weight dominates)
    Case("linear regression on an unscaled feature: the intercept's sign flipped",
         _unscaled_feature_case(), False, sparse=False, bug_shape=(1, 1),
         bug_methods=("exhaustive",)),
]
