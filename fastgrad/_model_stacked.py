"""The model method's differences in plain NumPy, for models small enough not to need a compiler.

The whole-model kernel (``fastgrad.kernels.model``) takes about 20 s of CPU to compile on a
2-core machine, once; a notebook's 3-16-8-2 network on 100 samples is differenced in a few
milliseconds by stacked NumPy arrays. Below :data:`STACKED_MODEL_WORK` the model method
therefore runs this engine: the same definitions as the kernel, the same steps, the same
outputs, only evaluated as stacks of points instead of one column at a time.

A step on ``W_l[i, j]`` (or ``b_l[j]``) moves column j of layer l's pre-activation by
``step * A_{l-1}[s, i]`` in sample s (by ``step`` for a bias). As in the kernel:

* layer l is softmax or the output layer: the *target* is layer l itself, moved along
  ``e_j``;
* else the target is layer l + 1, moved by ``d * W_{l+1}[j, :]`` with
  ``d = act_l(Z_l[s, j] + shift) - A_l[s, j]``.

From the target on, every point goes through the remaining layers and the loss; its change
is the per-sample loss minus the sample's loss recomputed the same way, summed over samples.
A point whose move is exactly zero changes nothing (its change is exactly 0). For a softmax
output with cross-entropy the change has a closed form without a difference of two losses:
``sum(y) log1p(sum_c p_c expm1(u_c)) - y.u`` with ``u`` the move of the logits.
"""

import numpy as np

from .kernels import activations as _codes
from .kernels import losses as _losses
from .methods.exhaustive import combine_arrays

#: Largest ``n_samples * n_parameters * sum(widths)`` differenced by this engine (about
#: 10 ms of NumPy work on a 2-core machine, and no compiler); larger models use the kernel.
#: A count, not a timing, so the same call takes the same path on any machine and load.
STACKED_MODEL_WORK = 2**21
#: Largest number of floats in one stack of points (bounds the memory of one evaluation).
STACK_FLOATS = 2**22


def use_stacked(model_widths, n_samples):
    """Whether a chain of dense layers of these widths is differenced by this engine."""
    widths = np.asarray(model_widths, dtype=np.int64)
    n_parameters = int(np.sum((widths[:-1] + 1) * widths[1:]))
    return n_samples * n_parameters * int(widths.sum()) <= STACKED_MODEL_WORK


def sample_losses(loss_code, Y, out_values):
    """Per-sample loss ``sum_c term(Y[s, c], out[..., s, c])`` (not divided by n_samples).

    ``out_values`` may carry leading stack axes; ``Y`` is (n_samples, n_out).
    """
    Y_full = np.array(np.broadcast_to(Y, out_values.shape), dtype=np.float64)
    terms = np.empty(out_values.size)
    _losses.loss_terms(loss_code, Y_full.reshape(-1),
                       np.ascontiguousarray(out_values, dtype=np.float64).reshape(-1), terms)
    return terms.reshape(out_values.shape).sum(axis=-1)


class StackedModel:
    """The model's forward state, for :meth:`differences` (the model kernel's interface)."""

    def __init__(self, model, X, Y, chain):
        self.chain = chain
        self.activations = [None] + [layer.activation for _, layer in chain]
        self.codes = [None] + [layer.activation.code for _, layer in chain]
        self.weights = [None] + [layer.parameters["W"].astype(np.float64) for _, layer in chain]
        self.biases = [None] + [layer.parameters["b"].astype(np.float64).reshape(-1)
                                for _, layer in chain]
        self.post = [X.astype(np.float64)]
        self.pre = [np.zeros_like(self.post[0])]
        for position in range(1, len(chain) + 1):
            Z = self.post[-1] @ self.weights[position] + self.biases[position]
            self.pre.append(Z)
            self.post.append(self._activate(position, Z))
        self.cost_code = model.cost.code
        Y64, _ = model.cost._arrays(Y, self.post[-1])
        self.Y = np.ascontiguousarray(Y64, dtype=np.float64)
        self.n_layers = len(chain)
        self.base_loss = sample_losses(self.cost_code, self.Y, self.post[-1])
        #: root-sum-square of the per-sample loss terms over n_samples (see _ModelKernel)
        self.magnitude = float(np.sqrt(np.sum(self.base_loss**2))) / X.shape[0]
        out_code = self.codes[-1]
        self.closed_form = np.zeros(X.shape[0], dtype=bool)
        if out_code == _codes.SOFTMAX and self.cost_code == _losses.CROSS_ENTROPY:
            p = self.post[-1]
            self.closed_form = np.all(np.isfinite(p) & np.isfinite(self.Y)
                                      & ((p != 0) | (self.Y == 0)), axis=1)
        # the loss of every sample recomputed from each layer's pre-activation, exactly as
        # the points are: their changes are differences of equally rounded numbers
        self.base_from = [None] + [sample_losses(self.cost_code, self.Y,
                                                 self._forward_from(position,
                                                                    self.pre[position]))
                                   for position in range(1, len(chain) + 1)]

    def _activate(self, position, Z):
        return np.asarray(self.activations[position].forward(Z), dtype=np.float64)

    def _forward_from(self, target, Z):
        """The network's output from layer ``target``'s pre-activation (any leading axes)."""
        A = self._activate(target, Z)
        for position in range(target + 1, self.n_layers + 1):
            A = self._activate(position, A @ self.weights[position] + self.biases[position])
        return A

    def differences(self, position, name, param, rows, step, order, central, gap):
        """Difference rows ``rows`` (a slice) of parameter ``name`` of chain layer
        ``position`` (1-based), writing ``central[rows]`` and ``gap[rows]``."""
        block = param[rows]
        r, j = np.indices(block.shape).reshape(2, -1)
        values, gaps = self.element_differences(position, name, param, r + rows.start, j, step,
                                                order)
        central[rows] = values.reshape(block.shape)
        gap[rows] = gaps.reshape(block.shape)

    def element_differences(self, position, name, param, rows, columns, step, order):
        """(central, gap) of the elements ``param[rows, columns]`` (index arrays)."""
        values = param[rows, columns]
        levels = 2 if order == 4 else 1
        signed = []  # per point run (level, side): the signed step of every element
        scale = step
        for _ in range(levels):
            up = (values + scale) - values
            down = values - (values - scale)
            signed += [up, -down]
            scale /= 2
        signed = np.stack(signed)  # (K, n_elements)
        n_samples = self.Y.shape[0]
        direct = self.codes[position] == _codes.SOFTMAX or position == self.n_layers
        target = position if direct else position + 1
        floats = n_samples * self.pre[target].shape[1] * signed.shape[0]
        per_block = max(1, STACK_FLOATS // max(1, floats))
        totals = np.empty(signed.shape)
        for first in range(0, values.size, per_block):
            block = slice(first, min(first + per_block, values.size))
            totals[:, block] = self._totals(position, name, direct, target, signed[:, block],
                                            rows[block], columns[block])
        runs = [(totals[2 * level] / n_samples, -totals[2 * level + 1] / n_samples,
                 signed[2 * level], -signed[2 * level + 1]) for level in range(levels)]
        return combine_arrays(runs[0], runs[-1], order)

    def _totals(self, position, name, direct, target, signed, rows, columns):
        """Sum over samples of every point's loss change, shape of ``signed`` (K, elements)."""
        n_samples = self.Y.shape[0]
        inputs = np.ones((n_samples, rows.size)) if name == "b" else \
            self.post[position - 1][:, rows]
        # shift[s, k, e]: the move of Z_position[s, columns[e]] at point (k, e)
        shift = inputs[:, None, :] * signed[None]
        if direct:
            moved = shift
        else:
            Z = self.pre[position][:, columns][:, None, :]
            A = self.post[position][:, columns][:, None, :]
            moved = self._activate(position, Z + shift) - A
        changes = np.zeros(shift.shape)
        moving = moved != 0.0
        if not np.any(moving):
            return changes.sum(axis=0)
        # u[s, k, e, :]: the move of Z_target[s]
        if direct:
            u = np.zeros((*shift.shape, self.pre[target].shape[1]))
            np.put_along_axis(u, np.broadcast_to(columns[None, None, :, None],
                                                 (*shift.shape, 1)), moved[..., None], -1)
        else:
            u = moved[..., None] * self.weights[position + 1][columns][None, None]
        samples = np.broadcast_to(np.arange(n_samples)[:, None, None], shift.shape)
        closed = moving & (target == self.n_layers) & self.closed_form[samples]
        if np.any(closed):
            at = samples[closed]
            p, y, step_u = self.post[-1][at], self.Y[at], u[closed]
            with np.errstate(over="ignore", invalid="ignore"):
                changes[closed] = y.sum(axis=1) * np.log1p(
                    np.sum(p * np.expm1(step_u), axis=1)) - np.sum(y * step_u, axis=1)
        general = moving & ~closed
        if np.any(general):
            at = samples[general]
            Z_moved = self.pre[target][at] + u[general]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                losses = sample_losses(self.cost_code, self.Y[at],
                                       self._forward_from(target, Z_moved))
            changes[general] = losses - self.base_from[target][at]
        return changes.sum(axis=0)
