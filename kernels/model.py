"""Whole-model differences for chains of dense layers with built-in activations and losses.

A step on ``W_l[i, j]`` (or ``b_l[j]``) changes only column j of layer l's pre-activation,
and only in the samples where ``A_{l-1}[s, i]`` is not zero. The loss is a mean over samples
of per-sample terms, so for each such sample the kernel recomputes that one sample from the
changed column onwards and adds ``loss_s(new) - loss_s(old)``. Nothing else is recomputed.

Layers are packed into flat buffers with offsets so the kernel sees only plain arrays. Layer
k = 1..L has width ``widths[k]`` (``widths[0]`` is the number of input features):

* ``weights[w_off[k]:]`` holds W_k, shape (widths[k-1], widths[k]); ``biases[b_off[k]:]`` b_k;
* ``pre[a_off[k]:]`` holds Z_k and ``post[a_off[k]:]`` holds A_k, shape (n_samples, widths[k]);
  ``post[a_off[0]:]`` is the input X.

**One column, many points.** Every perturbation of column j of layer l, in sample s, moves one
vector, the pre-activation of a *target* layer T, along one direction ``v``:
``Z_T[s] + d * v``. Only the scalar ``d`` differs between the elements ``i`` of the column
and the four steps (two signs, two step sizes for order 4). The kernel therefore collects,
per (s, j), the ``d`` of every row of the block and evaluates them together: the target's
base vector and direction are loaded once, the loops run over the points and vectorise.

* layer l is softmax, or l is the output layer: T = l, ``v = e_j``, ``d`` = the step itself;
* layer l is elementwise: ``d = act_l(Z_l[s, j] + step) - act_l(Z_l[s, j])``, T = l + 1,
  ``v = W_{l+1}[j, :]`` (a rank-1 update of the next pre-activation);
* linear shortcut: when layers l + 1 .. T - 1 are all piecewise linear (identity, ReLU,
  leaky ReLU, piecewise linear) and ``|d| < margin[s, j]`` (no unit of those layers crosses a
  kink), ``Z_T`` moves by exactly ``d * slopes[s, j, :]``, the product of the weights and
  the active slopes of the layers in between, tabulated once per layer. Points outside the
  margin take the rank-1 path above.

From the target on, a batch of points goes through the remaining layers as small matrices
(``(width, points)``: each layer an affine map and an activation) and the loss. For the usual
classification head, softmax output with cross-entropy, the change of the loss has a closed
form that involves no cancellation (``_softmax_cross_entropy_changes``).
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_JIT, EXACT_SCALAR_JIT, SERIES_JIT
from .activations import PIECEWISE_LINEAR, RELU, SOFTMAX, activation_value
from .differences import combine, steps
from .losses import CROSS_ENTROPY, loss_term

#: Points evaluated together through the layers after the target (bounds the scratch).
CHUNK = 256
#: Largest ``|d * v_c|`` for which the closed form's series are exact to double precision.
SERIES_LIMIT = 2.0**-10


@njit(**EXACT_SCALAR_JIT)
def _activate_points(code, alpha, values, width, n):
    """Apply layer activation ``code`` to columns ``0..n`` of ``values[:width]`` in place.

    Softmax is taken over the rows of each column and uses rows ``width`` and ``width + 1``
    as scratch.
    """
    if code == SOFTMAX:
        # same order of operations as a softmax of one vector, point by point
        row_max = values[width]  # the two rows after the layer's width are scratch
        for k in range(n):
            row_max[k] = values[0, k]
        for c in range(1, width):
            for k in range(n):
                row_max[k] = max(row_max[k], values[c, k])
        total = values[width + 1]
        for k in range(n):
            total[k] = 0.0
        for c in range(width):
            for k in range(n):
                values[c, k] = np.exp(values[c, k] - row_max[k])
                total[k] += values[c, k]
        for c in range(width):
            for k in range(n):
                values[c, k] /= total[k]
    else:
        for c in range(width):
            for k in range(n):
                values[c, k] = activation_value(code, values[c, k], alpha)


@njit(**EXACT_SCALAR_JIT)
def _affine_points(weights, w_start, biases, b_start, values, n_in, n_out, n, out):
    """out[:n_out, :n] = (values[:n_in, :n].T @ W + b).T, summed over inputs in order."""
    for c in range(n_out):
        bias = biases[b_start + c]
        for k in range(n):
            out[c, k] = bias
    for u in range(n_in):
        row = w_start + u * n_out
        for c in range(n_out):
            w = weights[row + c]
            for k in range(n):
                out[c, k] += values[u, k] * w


@njit(**EXACT_SCALAR_JIT)
def _losses_after(target, s, direction, d, start, n, widths, weights, w_off, biases, b_off, pre,
                  a_off, codes, alphas, loss_code, Y, scratch_a, scratch_b, out):
    """out[k] = loss_s with ``Z_target[s] + d[start + k] * direction``, for k < n."""
    n_layers = widths.size - 1
    width = widths[target]
    row = a_off[target] + s * width
    for c in range(width):
        base = pre[row + c]
        v = direction[c]
        for k in range(n):
            scratch_a[c, k] = base + d[start + k] * v
    k = target
    while True:  # scratch_a holds the pre-activation of layer k
        _activate_points(codes[k], alphas[k], scratch_a, widths[k], n)
        if k == n_layers:
            break
        _affine_points(weights, w_off[k + 1], biases, b_off[k + 1], scratch_a, widths[k],
                       widths[k + 1], n, scratch_b)
        scratch_a, scratch_b = scratch_b, scratch_a
        k += 1
    for p in range(n):
        out[p] = 0.0
    for c in range(widths[n_layers]):
        y = Y[s, c]
        for p in range(n):
            out[p] += loss_term(loss_code, y, scratch_a[c, p])


@njit(**SERIES_JIT)
def _softmax_cross_entropy_changes(probabilities, direction, width, label_sum, label_dot, d, n,
                                   out):
    """out[k] = change of a softmax cross-entropy term when its logits move by d[k] * v.

    With ``p = softmax(z)``, labels y and ``u_c = d v_c``, the term
    ``sum(y) logsumexp(z) - y.z`` changes by exactly
    ``sum(y) log1p(sum_c p_c expm1(u_c)) - d (y.v)``: no difference of two losses, so no
    cancellation. The caller guarantees ``|u_c| <= SERIES_LIMIT``, where expm1 to u^5 and
    log1p to a^6 are exact to double precision (the first omitted term is below 1/100 of an
    ulp of the sum). Summed over classes first, ``sum_c p_c expm1(d v_c)`` is the polynomial
    ``sum_n d^n M_n`` with ``M_n = sum_c p_c v_c^n / n!``: five moments per (sample, column),
    then a handful of fused multiply-adds per point.
    """
    m1 = 0.0
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    m5 = 0.0
    for c in range(width):
        v = direction[c]
        term = probabilities[c] * v
        m1 += term
        term *= v
        m2 += term
        term *= v
        m3 += term
        term *= v
        m4 += term
        term *= v
        m5 += term
    m2 /= 2.0
    m3 /= 6.0
    m4 /= 24.0
    m5 /= 120.0
    for k in range(n):
        x = d[k]
        a = x * (m1 + x * (m2 + x * (m3 + x * (m4 + x * m5))))
        log1p = a * (1.0 + a * (-0.5 + a * (1.0 / 3.0 + a * (-0.25 + a * (0.2 - a / 6.0)))))
        out[k] = label_sum * log1p - x * label_dot


@njit(**EXACT_SCALAR_JIT)
def _changes(target, s, direction, d, n, widths, weights, w_off, biases, b_off, pre, a_off,
             codes, alphas, loss_code, Y, base, probabilities, closed_form, largest_step,
             scratch_a, scratch_b, compact_d, compact_at, acc, out):
    """out[k] = loss_s(Z_target[s] + d[k] * direction) - loss_s(Z_target[s]) for k < n.

    ``largest_step`` bounds ``|d|``. A zero ``d`` gives exactly zero.
    """
    if n == 0:
        return
    width = widths[target]
    if closed_form[s] and target == widths.size - 1:
        largest_slope = 0.0
        label_sum = 0.0
        label_dot = 0.0
        for c in range(width):
            largest_slope = max(largest_slope, abs(direction[c]))
            label_sum += Y[s, c]
            label_dot += Y[s, c] * direction[c]
        if largest_step * largest_slope <= SERIES_LIMIT:
            _softmax_cross_entropy_changes(probabilities[s], direction, width, label_sum,
                                           label_dot, d, n, out)
            return
    # general path: every layer from the target on, for the points that move
    m = 0
    for k in range(n):
        out[k] = 0.0
        if d[k] != 0.0:
            compact_d[m] = d[k]
            compact_at[m] = k
            m += 1
    for start in range(0, m, CHUNK):
        size = min(CHUNK, m - start)
        _losses_after(target, s, direction, compact_d, start, size, widths, weights, w_off,
                      biases, b_off, pre, a_off, codes, alphas, loss_code, Y, scratch_a,
                      scratch_b, acc)
        for q in range(size):
            out[compact_at[start + q]] = acc[q] - base[s]


@njit(**EXACT_SCALAR_JIT)
def _base_losses(target, widths, weights, w_off, biases, b_off, pre, a_off, codes, alphas,
                 loss_code, Y, scratch_a, scratch_b, out):
    """out[s] = loss_s recomputed from Z_target[s] exactly as ``_losses_after`` does."""
    zero = np.zeros(1)
    direction = np.zeros(widths[target])
    single = np.empty(1)
    for s in range(Y.shape[0]):
        _losses_after(target, s, direction, zero, 0, 1, widths, weights, w_off, biases, b_off,
                      pre, a_off, codes, alphas, loss_code, Y, scratch_a, scratch_b, single)
        out[s] = single[0]


@njit(**EXACT_SCALAR_JIT)
def _closed_form_inputs(widths, pre, a_off, codes, loss_code, Y, probabilities, closed_form):
    """Softmax of the output pre-activation per sample, and where the closed form applies.

    It applies to a softmax output with cross-entropy, in every sample whose probabilities
    are finite and nonzero wherever the label is nonzero (else the loss itself is infinite
    or NaN, and the general path reproduces that).
    """
    n_layers = widths.size - 1
    width = widths[n_layers]
    usable = codes[n_layers] == SOFTMAX and loss_code == CROSS_ENTROPY
    for s in range(Y.shape[0]):
        closed_form[s] = usable
        if not usable:
            continue
        row = a_off[n_layers] + s * width
        row_max = pre[row]
        for c in range(1, width):
            row_max = max(row_max, pre[row + c])
        total = 0.0
        for c in range(width):
            probabilities[s, c] = np.exp(pre[row + c] - row_max)
            total += probabilities[s, c]
        for c in range(width):
            probabilities[s, c] /= total
            p = probabilities[s, c]
            if not np.isfinite(p) or (p == 0.0 and Y[s, c] != 0.0) or not np.isfinite(Y[s, c]):
                closed_form[s] = False


@njit(**EXACT_SCALAR_JIT)
def _flat_around(code, alpha, z, reach):
    """Whether activation ``code`` is constant on [z - reach, z + reach] (a dead ReLU unit).

    Twice the reach is required, so that rounding ``z + step`` cannot reach the kink.
    """
    if code == RELU:
        return z < -2.0 * reach
    if code == PIECEWISE_LINEAR:
        return abs(z) > alpha + 2.0 * reach
    return False


@njit(**EXACT_SCALAR_JIT)
def _activation_changes(direct, code, alpha, z, y0, inputs, step, n, d):
    """d[r] = act(z + step * inputs[r]) - y0 (or the shift itself when ``direct``).

    One loop per common activation, so that the loop over rows vectorises.
    """
    if direct:
        for r in range(n):
            d[r] = step[r] * inputs[r]
    elif code == RELU:
        for r in range(n):
            moved = z + step[r] * inputs[r]
            d[r] = (moved if moved > 0 else 0.0) - y0
    else:
        for r in range(n):
            d[r] = activation_value(code, z + step[r] * inputs[r], alpha) - y0


@njit(**EXACT_SCALAR_JIT)
def _column(layer, is_bias, param, j, row_start, widths, weights, w_off, biases, b_off, pre,
            post, a_off, codes, alphas, loss_code, Y, slopes, margin, main_target, shortcut,
            main_base, side_base, probabilities, closed_form, largest_input, step_scale,
            relative, order, central, gap):
    """Differences of column j of the parameter block (see ``model_differences``).

    Point ``(level * 2 + side) * n_rows + r`` is row r's step at level 0 (h) or 1 (h / 2),
    forward (side 0) or backward (side 1): each (level, side) is a contiguous run of rows.
    """
    n_layers = widths.size - 1
    n_samples = Y.shape[0]
    n_rows = param.shape[0]
    levels = 2 if order == 4 else 1
    code = codes[layer]
    alpha = alphas[layer]
    direct = main_target == layer
    width_in = widths[layer - 1]
    width = widths[layer]
    width_next = widths[layer + 1] if layer < n_layers else 0
    n_points = n_rows * levels * 2
    max_width = 0
    for k in range(widths.size):
        max_width = max(max_width, widths[k])
    scratch_a = np.empty((max_width + 2, CHUNK))
    scratch_b = np.empty((max_width + 2, CHUNK))
    acc = np.empty(CHUNK)
    # signed steps per point: +h+ forward, -h- backward
    signed_step = np.empty(n_points)
    largest_step = 0.0
    for r in range(n_rows):
        scale = step_scale
        for level in range(levels):
            _, _, step_up, step_down = steps(param[r, j], scale, relative)
            signed_step[(level * 2) * n_rows + r] = step_up
            signed_step[(level * 2 + 1) * n_rows + r] = -step_down
            largest_step = max(largest_step, step_up, step_down)
            scale /= 2
    # sum over samples of each point's change f(x +- h) - f(x)
    totals = np.zeros(n_points)
    d = np.empty(n_points)
    changes = np.empty(n_points)
    d_side = np.empty(n_points)
    at_side = np.empty(n_points, dtype=np.int64)
    compact_d = np.empty(n_points)
    compact_at = np.empty(n_points, dtype=np.int64)
    ones = np.ones(n_rows)
    if direct:
        unit = np.zeros(width)
        unit[j] = 1.0
        side_direction = unit
    else:
        start = w_off[layer + 1] + j * width_next
        side_direction = weights[start:start + width_next]
    main_direction = side_direction
    for s in range(n_samples):
        z = pre[a_off[layer] + s * width + j]
        reach = largest_step * largest_input[s]  # bounds |step * input| in this sample
        if not direct and _flat_around(code, alpha, z, reach):
            continue  # no step moves this unit: every point's change is zero
        y0 = activation_value(code, z, alpha)
        if is_bias:
            inputs = ones
        else:
            first = a_off[layer - 1] + s * width_in + row_start
            inputs = post[first:first + n_rows]
        for run in range(2 * levels):
            _activation_changes(direct, code, alpha, z, y0, inputs,
                                signed_step[run * n_rows:(run + 1) * n_rows], n_rows,
                                d[run * n_rows:(run + 1) * n_rows])
        n_side = 0
        if shortcut:  # points outside the margin go the rank-1 way, from layer + 1
            limit = margin[s, j]
            n_outside = 0
            for k in range(n_points):
                n_outside += not abs(d[k]) < limit
            if n_outside:
                for k in range(n_points):
                    if d[k] != 0.0 and not abs(d[k]) < limit:
                        d_side[n_side] = d[k]
                        at_side[n_side] = k
                        n_side += 1
                        d[k] = 0.0
            main_direction = slopes[s, j]
        # |d| <= |step * input| times the activation's slope: reach bounds it for ReLU-like
        # units; the closed form checks the actual largest product anyway
        largest_d = 0.0
        for k in range(n_points):
            largest_d = max(largest_d, abs(d[k]))
        _changes(main_target, s, main_direction, d, n_points, widths, weights, w_off, biases,
                 b_off, pre, a_off, codes, alphas, loss_code, Y, main_base, probabilities,
                 closed_form, largest_d, scratch_a, scratch_b, compact_d, compact_at, acc,
                 changes)
        for k in range(n_points):
            totals[k] += changes[k]
        if n_side:
            largest_d = 0.0
            for k in range(n_side):
                largest_d = max(largest_d, abs(d_side[k]))
            _changes(layer + 1, s, side_direction, d_side, n_side, widths, weights, w_off,
                     biases, b_off, pre, a_off, codes, alphas, loss_code, Y, side_base,
                     probabilities, closed_form, largest_d, scratch_a, scratch_b, compact_d,
                     compact_at, acc, changes)
            for k in range(n_side):
                totals[at_side[k]] += changes[k]
    for r in range(n_rows):
        # backward totals hold sum(f(x - h) - f(x)); negating the sum is exact
        coarse = (totals[r] / n_samples, -totals[n_rows + r] / n_samples,
                  signed_step[r], -signed_step[n_rows + r])
        fine = coarse
        if order == 4:
            fine = (totals[2 * n_rows + r] / n_samples, -totals[3 * n_rows + r] / n_samples,
                    signed_step[2 * n_rows + r], -signed_step[3 * n_rows + r])
        central[r, j], gap[r, j] = combine(coarse, fine, order)


@njit(**EXACT_JIT)
def model_differences(layer, is_bias, param, row_start, widths, weights, w_off, biases, b_off,
                      pre, post, a_off, codes, alphas, loss_code, Y, slopes, margin, target,
                      step_scale, relative, order, central, gap):
    """Differences of the model loss for rows ``row_start ..`` of one parameter of ``layer``.

    ``param`` holds the rows to difference (their values set the steps); ``central`` and
    ``gap`` receive one value per element of ``param``. ``slopes`` (n_samples, width_l,
    widths[target]) and ``margin`` (n_samples, width_l) enable the linear shortcut from layer
    ``layer`` to the pre-activation of layer ``target``; pass empty arrays to disable it.
    Columns run in parallel; each one evaluates its rows' points together, sample by sample.
    """
    n_layers = widths.size - 1
    n_samples = Y.shape[0]
    max_width = 0
    for k in range(widths.size):
        max_width = max(max_width, widths[k])
    direct = codes[layer] == SOFTMAX or layer == n_layers
    shortcut = not direct and margin.size > 0
    main_target = layer if direct else (target if shortcut else layer + 1)
    scratch_a = np.empty((max_width + 2, CHUNK))
    scratch_b = np.empty((max_width + 2, CHUNK))
    main_base = np.empty(n_samples)
    _base_losses(main_target, widths, weights, w_off, biases, b_off, pre, a_off, codes, alphas,
                 loss_code, Y, scratch_a, scratch_b, main_base)
    side_base = main_base
    if shortcut:  # points outside the shortcut's margin go from layer + 1
        side_base = np.empty(n_samples)
        _base_losses(layer + 1, widths, weights, w_off, biases, b_off, pre, a_off, codes,
                     alphas, loss_code, Y, scratch_a, scratch_b, side_base)
    probabilities = np.empty((n_samples, widths[n_layers]))
    closed_form = np.empty(n_samples, dtype=np.bool_)
    _closed_form_inputs(widths, pre, a_off, codes, loss_code, Y, probabilities, closed_form)
    n_rows = param.shape[0]
    largest_input = np.empty(n_samples)  # largest |input| of the block's rows, per sample
    for s in range(n_samples):
        largest = 1.0 if is_bias else 0.0
        inputs = a_off[layer - 1] + s * widths[layer - 1] + row_start
        for r in range(0 if is_bias else n_rows):
            largest = max(largest, abs(post[inputs + r]))
        largest_input[s] = largest
    for j in prange(param.shape[1]):
        _column(layer, is_bias, param, j, row_start, widths, weights, w_off, biases, b_off, pre,
                post, a_off, codes, alphas, loss_code, Y, slopes, margin, main_target, shortcut,
                main_base, side_base, probabilities, closed_form, largest_input, step_scale,
                relative, order, central, gap)


@njit(**EXACT_JIT)
def sample_losses(loss_code, Y, out_values, result):
    """result[s] = sum_c term(Y[s, c], out_values[s, c]) (not divided by n_samples)."""
    for s in prange(Y.shape[0]):
        total = 0.0
        for c in range(Y.shape[1]):
            total += loss_term(loss_code, Y[s, c], out_values[s, c])
        result[s] = total
