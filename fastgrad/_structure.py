"""Structure descriptions of the functions fastgrad's own objects hand out.

A structure is a hypothesis about what ``fn`` computes (an elementwise activation, a row
softmax, a loss of fixed labels, a dense layer as a function of one parameter). The structured
method verifies it against ``fn`` itself before using it, then differences every element with
a kernel from ``fastgrad.kernels.differences`` that recomputes only what a perturbation changes.
"""

import functools
import types

import numpy as np

from ._identity import is_fastgrad_function, is_fastgrad_instance
from ._tolerances import EXACT_CHANGE_ULPS
from ._verdict import noise_floor
from .kernels import activations as _codes
from .kernels import differences as _diff
from .kernels import losses as _losses
from .kernels import softmax as _softmax

#: Rows of a parameter matrix differenced per kernel call (progress granularity).
ROWS_PER_CALL = 64


class Structure:
    """Base class: ``evaluate(value)`` must equal ``fn(value)``; ``differences`` fills arrays."""

    description = "structure"

    def evaluate(self, value):
        raise NotImplementedError

    def differences(self, value, dLdf, step_scale, relative, order, central, gap, advance):
        raise NotImplementedError

    def magnitude(self, value, dLdf, output):
        """Per element: root-sum-square of output * dLdf over the outputs it can move.

        ``output`` is fn(value), already computed by the checker.
        """
        raise NotImplementedError

    def terms(self, value, dLdf, output):
        """Per element: magnitude of the terms that form its gradient, ``sum_k |dLdf_k
        df_k/dvalue_i|`` (the scale of its rounding), or None when unknown."""
        return None

    def term_count(self, value):
        """How many terms each element's gradient sums (one number for all), or None when
        unknown. An elementwise map's element is one product: 1."""
        return 1 if self.elementwise else None

    def noise(self, value, dLdf, output, steps, dtype):
        """Per element: the rounding floor of the kernel's difference at ``steps``.

        The default is a difference of outputs, ``g(x + h) - g(x - h)``: it rounds at the
        outputs' size over h (:func:`fastgrad._verdict.noise_floor`).
        """
        return noise_floor(self.magnitude(value, dLdf, output), steps, dtype)

    #: Elementwise structures can difference any subset of elements on its own (refinement).
    elementwise = False

    def subset_differences(self, value, dLdf, flat_indices, step_scale, relative):
        """Order-2 (central, gap) of the given elements only (elementwise structures)."""
        raise NotImplementedError


class Elementwise(Structure):
    """``fn = activation.forward`` for an elementwise built-in activation."""

    def __init__(self, activation):
        self.activation = activation
        self.description = f"elementwise {activation!r}"

    def evaluate(self, value):
        return self.activation.forward(value)

    def magnitude(self, value, dLdf, output):
        return np.abs(output * dLdf)

    def terms(self, value, dLdf, output):
        return np.abs(self.activation.backward(value, np.broadcast_to(dLdf, value.shape)))

    elementwise = True

    def subset_differences(self, value, dLdf, flat_indices, step_scale, relative):
        x = np.ascontiguousarray(value.reshape(-1)[flat_indices])
        weights = _frozen(np.ascontiguousarray(np.broadcast_to(dLdf, value.shape).reshape(-1)[
            flat_indices], dtype=value.dtype))
        central, gap = np.empty_like(x), np.empty_like(x)
        _diff.elementwise_differences(self.activation.code, float(self.activation.alpha), x,
                                      weights, step_scale, relative, 2, central, gap)
        return central, gap

    def differences(self, value, dLdf, step_scale, relative, order, central, gap, advance):
        _diff.elementwise_differences(self.activation.code, float(self.activation.alpha),
                                      value.reshape(-1), _frozen(dLdf.reshape(-1)), step_scale,
                                      relative, order, central.reshape(-1), gap.reshape(-1))
        advance(value.size)


class RowSoftmax(Structure):
    """``fn = SoftMax().forward``: each row depends only on itself."""

    description = "row softmax"

    def __init__(self, activation):
        self.activation = activation

    def evaluate(self, value):
        return self.activation.forward(value)

    def magnitude(self, value, dLdf, output):
        rows = np.sqrt(((output * dLdf) ** 2).sum(axis=-1, keepdims=True))
        return np.broadcast_to(rows, value.shape)

    @staticmethod
    def _weights(output, dLdf):
        """``(s, |g|, sum_k s_k |g_k|)`` per row, in float64."""
        s = np.asarray(output, dtype=np.float64)
        g = np.abs(np.broadcast_to(dLdf, s.shape))
        return s, g, np.sum(s * g, axis=-1, keepdims=True)

    def terms(self, value, dLdf, output):
        # sum_k |g_k| |s_k (delta_ki - s_i)| = s_i (|g_i| (1 - 2 s_i) + sum_k s_k |g_k|)
        s, g, row = self._weights(output, dLdf)
        return s * (g * np.abs(1.0 - 2.0 * s) + row)

    def term_count(self, value):
        return value.shape[-1] if value.ndim else 1

    def noise(self, value, dLdf, output, steps, dtype):
        # the kernel forms each change as u c / (1 + u) (kernels.differences): no difference
        # of outputs, so nothing rounds at the outputs' size over h. It rounds where c = d_i -
        # sum_j d_j s_j is formed: at s_i (|d_i| + sum_j |d_j| s_j), whatever the step
        s, g, row = self._weights(output, dLdf)
        return EXACT_CHANGE_ULPS * np.finfo(dtype).eps * s * (g + row)

    def differences(self, value, dLdf, step_scale, relative, order, central, gap, advance):
        if value.ndim == 0:
            raise ValueError("x: softmax needs at least one axis")
        n_cols = value.shape[-1]
        _diff.softmax_differences(value.reshape(-1, n_cols), dLdf.reshape(-1, n_cols),
                                  step_scale, relative, order, central.reshape(-1, n_cols),
                                  gap.reshape(-1, n_cols))
        advance(value.size)


class LossOf(Structure):
    """``fn(y_hat) = loss.forward(Y, y_hat)`` for a built-in loss and fixed labels ``Y``."""

    def __init__(self, loss, Y):
        self.loss = loss
        self.Y = Y
        self.description = f"elementwise loss {loss!r}"

    def evaluate(self, value):
        return self.loss.forward(self.Y, value)

    def magnitude(self, value, dLdf, output):
        Y, y_hat = self.loss._arrays(self.Y, value)
        terms = np.empty(y_hat.size, dtype=np.float64)
        _losses.loss_terms(self.loss.code, Y.reshape(-1).astype(np.float64),
                           y_hat.reshape(-1).astype(np.float64), terms)
        scale = abs(float(np.asarray(dLdf).reshape(-1)[0])) / y_hat.shape[0]
        return np.abs(terms).reshape(value.shape) * scale

    def terms(self, value, dLdf, output):
        scale = abs(float(np.asarray(dLdf).reshape(-1)[0]))
        return np.abs(self.loss.backward(self.Y, value)).astype(np.float64) * scale

    elementwise = True

    def subset_differences(self, value, dLdf, flat_indices, step_scale, relative):
        Y, y_hat = self.loss._arrays(self.Y, value)
        scale = float(np.asarray(dLdf).reshape(-1)[0]) / y_hat.shape[0]
        y = np.ascontiguousarray(Y.reshape(-1)[flat_indices], dtype=value.dtype)
        p = np.ascontiguousarray(y_hat.reshape(-1)[flat_indices])
        central, gap = np.empty_like(p), np.empty_like(p)
        _diff.loss_differences(self.loss.code, y, p, scale, step_scale, relative, 2, central,
                               gap)
        return central, gap

    def differences(self, value, dLdf, step_scale, relative, order, central, gap, advance):
        Y, y_hat = self.loss._arrays(self.Y, value)
        scale = float(np.asarray(dLdf).reshape(-1)[0]) / y_hat.shape[0]
        _diff.loss_differences(self.loss.code, Y.reshape(-1).astype(value.dtype),
                               y_hat.reshape(-1), scale, step_scale, relative, order,
                               central.reshape(-1), gap.reshape(-1))
        advance(value.size)


class DenseParameter(Structure):
    """``fn(value) = act(X @ W + b)`` with W or b replaced by ``value``."""

    def __init__(self, name, X, W, b, activation):
        self.name = name
        self.X = X
        self.W = W
        self.b = b
        self.activation = activation
        self.description = f"dense layer parameter {name} through {activation!r}"
        self._softmax = is_fastgrad_instance(activation, "SoftMax")

    def _arrays(self, value):
        dtype = value.dtype
        W = value if self.name == "W" else self.W.astype(dtype, copy=False)
        b = value if self.name == "b" else self.b.astype(dtype, copy=False)
        return self.X.astype(dtype, copy=False), W, b

    def evaluate(self, value):
        X, W, b = self._arrays(value)
        return self.activation.forward(X @ W + b)

    def magnitude(self, value, dLdf, output):
        squares = (output * dLdf) ** 2
        if self._softmax:  # a column moves whole rows
            return np.full(value.shape, float(np.sqrt(squares.sum())))
        columns = np.sqrt(squares.sum(axis=0))
        if columns.size == value.size:  # the bias
            return columns.reshape(value.shape)
        return np.broadcast_to(columns, value.shape)

    def terms(self, value, dLdf, output):
        X, W, b = self._arrays(value)
        Z = X @ W + b
        local = np.abs(self.activation.backward(Z, np.broadcast_to(dLdf, Z.shape)))
        local = local.astype(np.float64)
        if self.name == "W":
            return np.abs(X.astype(np.float64)).T @ local
        return local.sum(axis=0).reshape(value.shape)

    def term_count(self, value):
        # a sum over samples, of a sum over a softmax row's outputs
        return self.X.shape[0] + (value.shape[-1] if self._softmax else 0)

    def differences(self, value, dLdf, step_scale, relative, order, central, gap, advance):
        X, W, b = self._arrays(value)
        Z = np.ascontiguousarray(X @ W + b)
        if dLdf.shape != Z.shape:
            dLdf = np.broadcast_to(dLdf, Z.shape)
        dLdf = np.ascontiguousarray(dLdf, dtype=value.dtype)
        n_samples = X.shape[0]
        if self.name == "W":
            inputs_t = np.ascontiguousarray(X.T)
        else:
            inputs_t = np.ones((1, n_samples), dtype=value.dtype)
        head = ()        # scalar arguments before the arrays
        row_tables = ()  # tables indexed by the parameter's rows, sliced with each chunk
        if self._softmax:
            P = np.empty_like(Z)
            _softmax.softmax_forward(Z, P)
            C = dLdf - np.sum(dLdf * P, axis=1, keepdims=True)
            tables = (np.ascontiguousarray(P.T), np.ascontiguousarray(C.T))
            kernel = _diff.dense_softmax_differences
        elif self.activation.code == _codes.TANH:
            Y = self.activation.forward(Z)
            slope = (1.0 - Y) * (1.0 + Y)
            tables = (np.ascontiguousarray(Z.T), np.ascontiguousarray(Y.T),
                      np.ascontiguousarray(slope.T), np.ascontiguousarray(dLdf.T))
            row_tables = tuple(np.tanh(step_scale / 2**level * inputs_t) for level in (0, 1))
            kernel = _diff.dense_tanh_differences
        else:
            Y = self.activation.forward(Z)
            tables = (np.ascontiguousarray(Z.T), np.ascontiguousarray(Y.T),
                      np.ascontiguousarray(dLdf.T))
            kernel = _diff.dense_differences
            head = (self.activation.code, float(self.activation.alpha))
        for start in range(0, value.shape[0], ROWS_PER_CALL):
            rows = slice(start, min(start + ROWS_PER_CALL, value.shape[0]))
            kernel(*head, inputs_t[rows], *tables, *(table[rows] for table in row_tables),
                   value[rows], step_scale, relative, order, central[rows], gap[rows])
            advance(central[rows].size)


def _frozen(array):
    """A read-only view of an array a kernel only reads.

    A read-only array is another argument type to Numba: the checker's read-only ``dLdf``
    and a writeable copy of part of it would compile the same kernel twice.
    """
    view = array.view()
    view.flags.writeable = False
    return view


def _is_builtin_forward(obj, func, *qualnames):
    """``func`` is ``obj``'s class's forward and is fastgrad's own (not overridden)."""
    return getattr(type(obj), "forward", None) is func and is_fastgrad_function(func, *qualnames)


_ACTIVATION_FORWARDS = ("Activation.forward", "SoftMax.forward")


def _for_activation(activation):
    if is_fastgrad_instance(activation, "SoftMax"):
        return RowSoftmax(activation)
    return Elementwise(activation)


def _referenced_objects(fn):
    """Objects a plain function can see: closure cells, default arguments, named globals."""
    objects = list(fn.__defaults__ or ()) + list((fn.__kwdefaults__ or {}).values())
    for cell in fn.__closure__ or ():
        try:
            objects.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    globals_ = getattr(fn, "__globals__", {})
    for name in fn.__code__.co_names:
        if name in globals_:
            objects.append(globals_[name])
    return objects


def candidates(fn):
    """Return ``(structures, trusted)``: the structures ``fn`` may have, most specific first.

    ``trusted`` is true when ``fn`` is fastgrad's own function (a built-in activation's bound
    ``forward`` or a function that fastgrad returned with its structure attached): then the
    structure is ``fn`` by construction. Otherwise each candidate must still be verified.
    """
    declared = getattr(fn, "_fastgrad_structure", None)
    if isinstance(declared, Structure):
        return [declared], True
    if isinstance(fn, types.MethodType):
        obj, func = fn.__self__, fn.__func__
        if _is_builtin_forward(obj, func, *_ACTIVATION_FORWARDS):
            return [_for_activation(obj)], True
        return [], False
    if isinstance(fn, functools.partial):
        func = fn.func
        if (isinstance(func, types.MethodType)
                and _is_builtin_forward(func.__self__, func.__func__, "Loss.forward")
                and len(fn.args) == 1 and not fn.keywords):
            return [LossOf(func.__self__, fn.args[0])], False
        return [], False
    if not isinstance(fn, types.FunctionType):
        return [], False
    objects = _referenced_objects(fn)
    found = []
    losses = [o for o in objects if is_fastgrad_function(getattr(type(o), "forward", None),
                                                           "Loss.forward")]
    labels = [o for o in objects if isinstance(o, np.ndarray)]
    found += [LossOf(loss, Y) for loss in losses for Y in labels]
    found += [_for_activation(o) for o in objects
              if is_fastgrad_function(getattr(type(o), "forward", None), *_ACTIVATION_FORWARDS)]
    return found[:8], False
