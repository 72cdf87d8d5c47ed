"""The training step of the Keras-like model when every piece is fastgrad's own.

One step on a batch: gather the rows into a reused buffer, for each dense layer one BLAS
product (``np.dot``: for one sample ``matmul`` forms the outer product without BLAS; the weight
gradient through ``layers.weight_gradient``) into a
reused ``Z`` and one fused pass for bias and activation; at the output one
fused pass for the cost, its gradient through the output activation and the bias gradient;
going back, per layer one product for ``dW``, one for ``dX`` (skipped for the first layer,
whose input needs no gradient) and one fused pass for the activation derivative and the bias
gradient; then one fused update per parameter. Buffers are kept per batch size, in the model's
dtype (float32 stays float32). Anything else (a user's layer, activation, cost or optimizer)
takes the general path: ``forward``, ``backward``, ``optimizer.step``.
"""

import numpy as np

from ._identity import is_fastgrad_function
from .kernels import dense as _dense
from .layers import (
    activation_backward_bias,
    bias_activation,
    kernel_activation,
    weight_gradient,
)
from .optimizers import apply_update

# Identified by module and qualified name (``_identity``), so notebook reloads keep working.

def _own(obj, *qualnames):
    """Whether each of ``obj``'s named methods is fastgrad's, e.g. ``("Dropout.forward", ...)``."""
    return all(is_fastgrad_function(getattr(type(obj), name.split(".")[1], None), name)
               for name in qualnames)


def _is_dense(layer):
    return _own(layer, "FullyConnected.forward", "FullyConnected.backward",
                "FullyConnected._forward") and kernel_activation(layer.activation)


def _is_dropout(layer):
    return _own(layer, "Dropout.forward", "Dropout.backward")


def _cost_code(cost):
    """The kernel code of a built-in cost whose passes are fastgrad's own, else None."""
    if _own(cost, "Cost.forward", "Cost.backward") or _own(cost, "Loss.forward",
                                                            "Loss.backward"):
        return cost.code
    return None


def fast_path(model):
    """A :class:`Trainer` when the whole step can run fused, else None."""
    layers = model.layers
    if not layers or not _is_dense(layers[-1]):
        return None
    if not all(_is_dense(layer) or _is_dropout(layer) for layer in layers):
        return None
    code = _cost_code(model.cost_type)
    if code is None or not _own(model.optimizer, "Optimizer.step"):
        return None
    for layer in layers:
        for value in layer.parameters.values():
            if value.dtype != model.dtype or not value.flags.c_contiguous:
                return None
    return Trainer(model, code)


class _Workspace:
    """Buffers for one batch size."""

    def __init__(self, model, n):
        dtype = model.dtype
        self.X = np.empty((n, model.input_size), dtype=dtype)
        self.Y = np.empty((n, model.layers[-1].n_out), dtype=dtype)
        self.Z, self.A, self.dZ, self.dA, self.mask = [], [], [], [], []
        width = model.input_size
        for layer in model.layers:
            if _is_dense(layer):
                width = layer.n_out
                self.Z.append(np.empty((n, width), dtype=dtype))
                self.A.append(np.empty((n, width), dtype=dtype))
                self.dZ.append(np.empty((n, width), dtype=dtype))
                self.mask.append(None)
            else:
                self.Z.append(None)
                self.A.append(np.empty((n, width), dtype=dtype))
                self.dZ.append(None)
                self.mask.append(np.empty((n, width), dtype=dtype))
            self.dA.append(np.empty((n, width), dtype=dtype))


class Trainer:
    """Runs fused training steps for one configured model (see the module docstring)."""

    def __init__(self, model, cost_code):
        self.model = model
        self.cost_code = cost_code
        self._made_for = (model.optimizer, model.cost_type, list(model.layers), model.dtype)
        self.layers = model.layers
        self.spaces = {}
        self.grads = []
        for layer in self.layers:
            if _is_dense(layer):
                self.grads.append({name: np.zeros_like(value)
                                   for name, value in layer.parameters.items()})
            else:
                self.grads.append(None)

    def current(self, model):
        """Whether this trainer still fits ``model`` (same optimizer, cost, layers, dtype)."""
        optimizer, cost, layers, dtype = self._made_for
        return (model is self.model and model.optimizer is optimizer and model.cost_type is cost
                and model.dtype == dtype and len(model.layers) == len(layers)
                and all(a is b for a, b in zip(model.layers, layers, strict=True)))

    def step(self, X, Y, rows, training=True):
        """One step on ``X[rows]``, ``Y[rows]``; return the batch's cost (before the update)."""
        n = rows.size
        space = self.spaces.get(n)
        if space is None:
            space = self.spaces[n] = _Workspace(self.model, n)
        # mode="clip": with the default "raise" NumPy buffers out= (a second copy of the batch;
        # 29 vs 20 us for 32 rows of 784, 403 vs 247 us for 256, side by side). The rows are
        # the model's own permutation of range(n_samples), so clipping never changes one.
        np.take(X, rows, axis=0, out=space.X, mode="clip")
        np.take(Y, rows, axis=0, out=space.Y, mode="clip")
        layers = self.layers
        previous = space.X
        for i, layer in enumerate(layers):
            A = space.A[i]
            if space.Z[i] is None:       # dropout
                if training and layer.rate:
                    space.mask[i][...] = layer.mask(A.shape, A.dtype)
                    np.multiply(previous, space.mask[i], out=A)
                else:
                    space.mask[i].fill(1)
                    A[...] = previous
            else:
                Z = space.Z[i]
                np.dot(previous, layer.parameters["W"], out=Z)
                if i < len(layers) - 1:
                    bias_activation(layer.activation.code, float(layer.activation.alpha), Z,
                                    layer.parameters["b"].reshape(-1), A)
                else:
                    _dense.bias_activation_serial(layer.activation.code,
                                                  float(layer.activation.alpha), Z,
                                                  layer.parameters["b"].reshape(-1), A)
            previous = A
        out = layers[-1]
        last = len(layers) - 1
        grads = self.grads
        total = _dense.output_gradient(self.cost_code, out.activation.code,
                                       float(out.activation.alpha), 1.0 / n, space.Z[last],
                                       space.A[last], space.Y, space.dZ[last],
                                       grads[last]["b"].reshape(-1))
        upstream = space.dZ[last]   # dL/dZ of a dense layer, dL/dA of a dropout layer
        for i in range(last, -1, -1):
            layer = layers[i]
            inputs = space.A[i - 1] if i > 0 else space.X
            if space.Z[i] is None:   # dropout: dL/d(input) = mask * dL/d(output)
                np.multiply(upstream, space.mask[i], out=space.dA[i])
                upstream = space.dA[i]
                if i == 0:
                    break
            else:
                weight_gradient(inputs, upstream, out=grads[i]["W"])
                if i == 0:
                    break
                dA = space.dA[i - 1]
                np.dot(upstream, layer.parameters["W"].T, out=dA)
                upstream = dA
            below = i - 1
            if space.Z[below] is not None:
                act = layers[below].activation
                activation_backward_bias(act.code, float(act.alpha), space.Z[below], upstream,
                                         space.dZ[below], grads[below]["b"].reshape(-1))
                upstream = space.dZ[below]
        self._update()
        return total / n

    def _update(self):
        optimizer = self.model.optimizer
        optimizer.iterations += 1
        beta1, beta2, eps, v_scale, s_scale = optimizer._hyper()
        lr = optimizer.learning_rate
        rule = optimizer.rule
        for index, layer in enumerate(self.layers):
            grads = self.grads[index]
            if grads is None:
                continue
            layer.gradients = grads
            for name, value in layer.parameters.items():
                v, s = optimizer._slots(index, name, value)
                apply_update(rule, lr, beta1, beta2, eps, v_scale, s_scale, value.reshape(-1),
                             grads[name].reshape(-1), v, s)
