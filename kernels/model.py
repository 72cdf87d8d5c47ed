"""Whole-model differences for chains of dense layers with built-in activations and losses.

A step on ``W_l[i, j]`` (or ``b_l[j]``) changes only column j of layer l's pre-activation,
and only in the samples where ``A_{l-1}[s, i]`` is not zero. The loss is a mean over samples
of per-sample terms, so for each such sample the kernel recomputes that one sample from the
changed column onwards (a rank-1 update into layer l + 1 when layer l is elementwise, then
one vector through each later layer) and adds ``loss_s(new) - loss_s(old)``. Nothing else is
recomputed.

Layers are packed into flat buffers with offsets so the kernel sees only plain arrays. Layer
k = 1..L has width ``widths[k]`` (``widths[0]`` is the number of input features):

* ``weights[w_off[k]:]`` holds W_k, shape (widths[k-1], widths[k]); ``biases[b_off[k]:]`` b_k;
* ``pre[a_off[k]:]`` holds Z_k and ``post[a_off[k]:]`` holds A_k, shape (n_samples, widths[k]);
  ``post[a_off[0]:]`` is the input X.

Linear shortcut: when layer l + 1 is piecewise linear (identity, ReLU, leaky ReLU, piecewise
linear) and a change ``delta`` of ``A_l[s, j]`` moves no unit of layer l + 1 across a kink
(``|delta| < margin[s, j]``), layer l + 2's pre-activation moves by exactly
``delta * slopes[s, j, :]`` with ``slopes[s, j, :] = sum_u act'(Z_{l+1}[s, u]) W_{l+1}[j, u]
W_{l+2}[u, :]``, tabulated once per layer. That replaces a rank-1 update, an activation and
a matrix-vector product per sample with one short vector update.
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_JIT, EXACT_SCALAR_JIT
from .activations import SOFTMAX, activation_value
from .differences import combine, steps
from .losses import loss_term


@njit(**EXACT_SCALAR_JIT)
def _activate(code, alpha, values, n):
    """Apply an activation to values[:n] in place (softmax over the whole vector)."""
    if code == SOFTMAX:
        row_max = values[0]
        for u in range(1, n):
            row_max = max(row_max, values[u])
        total = 0.0
        for u in range(n):
            values[u] = np.exp(values[u] - row_max)
            total += values[u]
        for u in range(n):
            values[u] /= total
    else:
        for u in range(n):
            values[u] = activation_value(code, values[u], alpha)


@njit(**EXACT_SCALAR_JIT)
def _sample_loss(loss_code, Y, s, values, n):
    total = 0.0
    for c in range(n):
        total += loss_term(loss_code, Y[s, c], values[c])
    return total


@njit(**EXACT_SCALAR_JIT)
def _affine(weights, w_start, biases, b_start, values, n_in, n_out, out):
    """out[:n_out] = values[:n_in] @ W + b (zeros in values are skipped: dead ReLUs)."""
    for c in range(n_out):
        out[c] = biases[b_start + c]
    for u in range(n_in):
        a = values[u]
        if a == 0.0:
            continue
        row = w_start + u * n_out
        for c in range(n_out):
            out[c] += a * weights[row + c]


@njit(**EXACT_SCALAR_JIT)
def _loss_after(layer, j, shift, s, widths, weights, w_off, biases, b_off, pre, post, a_off,
                codes, alphas, loss_code, Y, base_loss, slopes, margin, scratch_a, scratch_b):
    """Loss term of sample s after column j of layer ``layer`` moves by ``shift``."""
    n_layers = widths.size - 1
    width = widths[layer]
    row = a_off[layer] + s * width
    k = layer + 1
    if codes[layer] != SOFTMAX:
        changed = activation_value(codes[layer], pre[row + j] + shift, alphas[layer])
        delta = changed - post[row + j]
        if delta == 0.0:
            return base_loss[s]
        if layer == n_layers:
            for c in range(width):
                scratch_a[c] = post[row + c]
            scratch_a[j] = changed
            return _sample_loss(loss_code, Y, s, scratch_a, width)
        if margin.size and abs(delta) < margin[s, j]:
            # linear shortcut over layer l + 1 (see the module docstring)
            width_skip = widths[layer + 2]
            skip_row = a_off[layer + 2] + s * width_skip
            for c in range(width_skip):
                scratch_a[c] = pre[skip_row + c] + delta * slopes[s, j, c]
            k = layer + 2
        else:
            # rank-1 update of the next pre-activation: Z_{l+1}[s] + delta * W_{l+1}[j, :]
            width_next = widths[layer + 1]
            next_row = a_off[layer + 1] + s * width_next
            w_row = w_off[layer + 1] + j * width_next
            for c in range(width_next):
                scratch_a[c] = pre[next_row + c] + delta * weights[w_row + c]
    else:
        for c in range(width):
            scratch_b[c] = pre[row + c]
        scratch_b[j] += shift
        _activate(SOFTMAX, 0.0, scratch_b, width)
        if layer == n_layers:
            return _sample_loss(loss_code, Y, s, scratch_b, width)
        _affine(weights, w_off[layer + 1], biases, b_off[layer + 1], scratch_b, width,
                widths[layer + 1], scratch_a)
    while True:  # scratch_a holds the pre-activation of layer k
        _activate(codes[k], alphas[k], scratch_a, widths[k])
        if k == n_layers:
            return _sample_loss(loss_code, Y, s, scratch_a, widths[k])
        _affine(weights, w_off[k + 1], biases, b_off[k + 1], scratch_a, widths[k],
                widths[k + 1], scratch_b)
        scratch_a, scratch_b = scratch_b, scratch_a
        k += 1


@njit(**EXACT_SCALAR_JIT)
def _level(layer, is_bias, i, j, param_value, step_scale, relative, widths, weights, w_off,
           biases, b_off, pre, post, a_off, codes, alphas, loss_code, Y, base_loss, slopes,
           margin, scratch_a, scratch_b):
    _, _, h_plus, h_minus = steps(param_value, step_scale, relative)
    n_samples = base_loss.size
    width_in = widths[layer - 1]
    up = 0.0
    down = 0.0
    for s in range(n_samples):
        x = 1.0 if is_bias else post[a_off[layer - 1] + s * width_in + i]
        if x == 0.0:
            continue
        up += _loss_after(layer, j, h_plus * x, s, widths, weights, w_off, biases, b_off, pre,
                          post, a_off, codes, alphas, loss_code, Y, base_loss, slopes, margin,
                          scratch_a, scratch_b) - base_loss[s]
        down += base_loss[s] - _loss_after(layer, j, -h_minus * x, s, widths, weights, w_off,
                                           biases, b_off, pre, post, a_off, codes, alphas,
                                           loss_code, Y, base_loss, slopes, margin, scratch_a,
                                           scratch_b)
    return up / n_samples, down / n_samples, h_plus, h_minus


@njit(**EXACT_JIT)
def model_differences(layer, is_bias, param, row_start, widths, weights, w_off, biases, b_off,
                      pre, post, a_off, codes, alphas, loss_code, Y, base_loss, slopes, margin,
                      step_scale, relative, order, central, gap):
    """Differences of the model loss for rows ``row_start ..`` of one parameter of ``layer``.

    ``param`` holds the rows to difference (their values set the steps); ``central`` and
    ``gap`` receive one value per element of ``param``. ``slopes`` (n_samples, width_l,
    width_{l+2}) and ``margin`` (n_samples, width_l) enable the linear shortcut; pass empty
    arrays to disable it.
    """
    max_width = 0
    for k in range(widths.size):
        max_width = max(max_width, widths[k])
    n_rows, n_out = param.shape
    for r in prange(n_rows):
        scratch_a = np.empty(max_width)
        scratch_b = np.empty(max_width)
        i = row_start + r
        for j in range(n_out):
            coarse = _level(layer, is_bias, i, j, param[r, j], step_scale, relative, widths,
                            weights, w_off, biases, b_off, pre, post, a_off, codes, alphas,
                            loss_code, Y, base_loss, slopes, margin, scratch_a, scratch_b)
            fine = coarse
            if order == 4:
                fine = _level(layer, is_bias, i, j, param[r, j], step_scale / 2, relative,
                              widths, weights, w_off, biases, b_off, pre, post, a_off, codes,
                              alphas, loss_code, Y, base_loss, slopes, margin, scratch_a,
                              scratch_b)
            central[r, j], gap[r, j] = combine(coarse, fine, order)


@njit(**EXACT_JIT)
def sample_losses(loss_code, Y, out_values, result):
    """result[s] = sum_c term(Y[s, c], out_values[s, c]) (not divided by n_samples)."""
    for s in prange(Y.shape[0]):
        total = 0.0
        for c in range(Y.shape[1]):
            total += loss_term(loss_code, Y[s, c], out_values[s, c])
        result[s] = total
