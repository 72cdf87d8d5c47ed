"""Fused parameter updates: one pass over a parameter, its gradient and its optimizer state.

The plain-NumPy update of Adam takes about ten passes over every weight with temporaries;
here each rule is one loop, in the parameter's dtype, on flat contiguous arrays.
"""

import numpy as np
from numba import prange

from ._config import LAYER_JIT, build

SGD = 0
MOMENTUM = 1          # v = beta v + (1 - beta) g;    w -= lr v
ADAGRAD = 2           # s += g^2;                      w -= lr g / (sqrt(s) + eps)
RMSPROP = 3           # s = beta s + (1 - beta) g^2;   w -= lr g / (sqrt(s) + eps)
ADAM = 4              # v, s as above;                 w -= lr v_hat / (sqrt(s_hat) + eps)
HEAVY_BALL = 5        # v = beta v - lr g;             w += v


def _update(rule, lr, beta1, beta2, eps, v_scale, s_scale, w, g, v, s):
    """Update ``w`` in place from ``g`` with the state ``v`` (first) and ``s`` (second moment).

    ``v_scale`` and ``s_scale`` divide the moments before use (Adam's bias correction; 1
    otherwise). Arrays are 1-D, contiguous, of one dtype; unused state may be empty.
    """
    for i in prange(w.size):
        gi = g[i]
        if rule == SGD:
            w[i] -= lr * gi
        elif rule == MOMENTUM:
            v[i] = beta1 * v[i] + (1.0 - beta1) * gi
            w[i] -= lr * v[i]
        elif rule == ADAGRAD:
            s[i] += gi * gi
            w[i] -= lr * gi / (np.sqrt(s[i]) + eps)
        elif rule == RMSPROP:
            s[i] = beta2 * s[i] + (1.0 - beta2) * gi * gi
            w[i] -= lr * gi / (np.sqrt(s[i]) + eps)
        elif rule == ADAM:
            v[i] = beta1 * v[i] + (1.0 - beta1) * gi
            s[i] = beta2 * s[i] + (1.0 - beta2) * gi * gi
            w[i] -= lr * (v[i] / v_scale) / (np.sqrt(s[i] / s_scale) + eps)
        else:
            v[i] = beta1 * v[i] - lr * gi
            w[i] += v[i]


update = build(_update, "_parallel", **LAYER_JIT)
update_serial = build(_update, "_serial", **{**LAYER_JIT, "parallel": False})
