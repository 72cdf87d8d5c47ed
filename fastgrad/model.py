"""The Keras-like sequential model: ``Model().add(layers.Dense(...))``, ``configure``,
``train``, ``predict``, ``summary``, ``save``/``load``; and the CS189-style
:class:`NeuralNetwork` built from layer arguments.

Data is laid out as ``(n_samples, n_features)``. Initial weights, shuffling and dropout masks
draw from NumPy's global generator unless a ``seed`` is given, so ``np.random.seed(0)`` before
building and training a model makes the run reproducible.
"""

import itertools
import json
import numbers
import os

import numpy as np

from . import _training
from . import costs as _costs
from . import initializers as _initializers
from . import losses as _losses
from . import optimizers as _optimizers
from ._blas import one_blas_thread
from ._identity import is_fastgrad_instance
from ._validation import add_note as _add_note
from ._validation import as_float_array, check_positive
from .layers import initialize_layer

__all__ = ["Model", "NeuralNetwork", "initialize_model"]


def array_module(cuda):
    """The array module for ``cuda``: NumPy, or CuPy when ``cuda`` is true.

    Raises
    ------
    ImportError
        ``cuda=True`` without CuPy installed.
    NotImplementedError
        ``cuda=True`` with CuPy installed: fastgrad's layers run Numba CPU kernels; the
        model keeps its array module in ``Model.xp`` so a CuPy path can be added behind it.
    """
    if not isinstance(cuda, (bool, np.bool_)):
        raise TypeError(f"cuda: expected True or False, got {cuda!r}")
    if not cuda:
        return np
    try:
        import cupy  # noqa: F401
    except ImportError as error:
        raise ImportError("cuda=True: CuPy is not installed, so the model cannot run on a GPU "
                          "(install a CuPy wheel matching your CUDA, e.g. "
                          "pip install cupy-cuda12x, or use Model(cuda=False))") from error
    raise NotImplementedError("cuda=True: CuPy is installed, but fastgrad's layers run on the "
                              "CPU (Numba kernels) for now; use Model(cuda=False)")


class Model:
    """A stack of layers trained on one cost (the Keras-like ``sandbox`` API).

    Parameters
    ----------
    cuda : bool
        Run on the GPU through CuPy. Not available yet: ``True`` raises, saying whether CuPy
        is missing (see :func:`array_module`).

    Attributes
    ----------
    layers : list
        The layers, in order.
    costs : list of numpy.float64
        The cost of every training batch, appended by :meth:`train`.
    cost_type : object
        The cost as given to :meth:`configure` (called ``cost_type.forward(AL, Y)``).
    cost : object
        The same cost in fastgrad's ``(Y, Y_hat)`` order (used by ``gradient_check``).
    optimizer : Optimizer
    parameters : list of dict
        Each layer's live ``{"W", "b"}`` dictionary (empty for dropout).
    xp : module
        The array module (NumPy).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import activations, costs, layers, model, optimizers
    >>> np.random.seed(0)
    >>> net = model.Model()
    >>> net.add(layers.Dense(units=4, activation=activations.ReLU()))
    >>> net.add(layers.Dense(units=1, activation=activations.Sigmoid()))
    >>> net.configure(costs.BinaryCrossentropy(), 3, optimizers.Adam())
    >>> X = np.random.randn(64, 3); Y = (X[:, :1] > 0).astype(float)
    >>> net.train(X, Y, epochs=20, learning_rate=0.05, batch_size=16)
    >>> net.costs[-1] < net.costs[0]
    True
    >>> net.predict(X).shape
    (64, 1)
    """

    def __init__(self, cuda=False):
        self.xp = array_module(cuda)
        self.cuda = bool(cuda)
        self.layers = []
        self.costs = []
        self.cost = None
        self.cost_type = None
        self.optimizer = None
        self.initializer = None
        self.input_size = None
        self.dtype = np.dtype(np.float64)
        self.output = None
        self._trainer = None

    def add(self, layer):
        """Append a layer (anything with ``forward``, ``backward`` and ``parameters``).

        Parameters
        ----------
        layer : Layer
        """
        if not all(hasattr(layer, attr) for attr in ("forward", "backward", "parameters")):
            raise TypeError("layer: expected a layer with forward, backward and parameters, "
                            f"got {type(layer).__name__}")
        if not callable(getattr(layer, "build", None)):
            raise TypeError(f"layer: {type(layer).__name__} has no build(n_in, *, dtype, rng) "
                            "method; a layer must create its parameters there and "
                            "return its output width (return n_in for a layer that keeps it)")
        self.layers.append(layer)
        self._trainer = None

    def configure(self, cost_type=None, input_size=None, optimizer=None, initializer=None, *,
                  dtype=np.float64, seed=None):
        """Create every layer's parameters and set the cost and optimizer.

        Parameters
        ----------
        cost_type : str or cost
            The cost (``costs.MSE()`` or ``"mse"``); any object with ``forward(AL, Y)`` and
            ``backward(AL, Y)``.
        input_size : int
            Number of input features. The original's positional order is
            ``(cost_type, input_size)``; ``(input_size, cost_type)`` is recognised too.
        optimizer : Optimizer or str, optional
            Defaults to ``optimizers.SGD()``.
        initializer : callable or str, optional
            Initializer for the layers that were not given one.
        dtype : {numpy.float64, numpy.float32}
            Dtype of the parameters and of the computation.
        seed : int, optional
            Seed of a private generator for the initial weights; by default they come from
            NumPy's global generator (as in the original: ``np.random.seed`` reproduces them).
        """
        if isinstance(cost_type, numbers.Integral) and not isinstance(cost_type, bool) and \
                not isinstance(input_size, numbers.Integral):
            cost_type, input_size = input_size, cost_type     # (input_size, cost_type, ...)
        if cost_type is None:
            raise TypeError("cost_type: required, e.g. configure(costs.MSE(), input_size=3)")
        if input_size is None:
            raise TypeError("input_size: required (the number of input features)")
        if not self.layers:
            raise ValueError("configure: add at least one layer first")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        self.dtype = dtype
        self.input_size = int(check_positive(input_size, "input_size", integer=True))
        self.cost_type = _costs.get(cost_type)
        self.cost = _costs.internal_loss(self.cost_type)
        self._cost_pf = _costs.as_predictions_first(self.cost_type)
        self.optimizer = _optimizers.SGD() if optimizer is None else _optimizers.get(optimizer)
        if hasattr(self.optimizer, "reset"):
            self.optimizer.reset()
        if initializer is not None:
            self.initializer = _initializers.get(initializer)
            for layer in self.layers:
                given = getattr(layer, "_init_given", False)
                if is_fastgrad_instance(layer, "FullyConnected") and not given:
                    layer.weight_init = self.initializer
        rng = None if seed is None else np.random.default_rng(
            check_positive(seed, "seed", integer=True, allow_zero=True))
        n_in = self.input_size
        for layer in self.layers:
            n_in = layer.build(n_in, dtype=self.dtype, rng=rng)
        self.output = None
        self._trainer = None

    # --- state ---------------------------------------------------------------------------

    @property
    def parameters(self):
        """Each layer's live parameter dictionary ``{"W": (n_in, n_out), "b": (1, n_out)}``."""
        return [layer.parameters for layer in self.layers]

    @parameters.setter
    def parameters(self, values):
        values = [v for v in values if np.size(v.get("W", ())) != 0]
        trainable = [layer for layer in self.layers if getattr(layer, "trainable", False)]
        if len(values) != len(trainable):
            raise ValueError(f"parameters: expected {len(trainable)} layers with weights, got "
                             f"{len(values)}")
        for index, (layer, value) in enumerate(zip(trainable, values, strict=True)):
            self._set_layer_parameters(layer, value, index)
        self._trainer = None

    def _set_layer_parameters(self, layer, value, index):
        W = as_float_array(value["W"], f"parameters[{index}]['W']", ndim=2, allow_int=True,
                           dtype=self.dtype)
        b = as_float_array(value["b"], f"parameters[{index}]['b']", allow_int=True,
                           dtype=self.dtype).reshape(1, -1)
        if W.shape[1] != layer.n_out or b.shape[1] != layer.n_out:
            raise ValueError(f"parameters[{index}]: expected W of shape (n_in, {layer.n_out}) "
                             f"and b of shape (1, {layer.n_out}), got {W.shape} and {b.shape}")
        if layer.n_in is not None and W.shape[0] != layer.n_in:
            raise ValueError(f"parameters[{index}]['W']: expected shape "
                             f"({layer.n_in}, {layer.n_out}), got {W.shape}")
        layer.n_in = W.shape[0]
        layer.parameters = {"W": np.array(W, order="C"), "b": np.array(b, order="C")}
        layer.gradients = {name: np.zeros_like(v) for name, v in layer.parameters.items()}
        layer.cache = {}

    @property
    def caches(self):
        """Each layer's cache of the last forward pass."""
        return [layer.cache for layer in self.layers]

    @property
    def trainable_layers(self):
        """The layers that have parameters."""
        return [layer for layer in self.layers if getattr(layer, "parameters", None)]

    def _check_built(self):
        if not self.layers or any(getattr(layer, "trainable", False) and not layer.parameters
                                  for layer in self.layers):
            raise RuntimeError("model: call configure(cost_type, input_size, optimizer) first")

    def _check_configured(self):
        if self.cost is None:
            raise RuntimeError("model: call configure(cost_type, input_size, optimizer) first")

    def _input(self, X):
        X = as_float_array(X, "X", ndim=2, allow_int=True, dtype=self.dtype)
        if self.input_size is not None and X.shape[1] != self.input_size:
            raise ValueError(f"X: expected shape (n_samples, {self.input_size}), got {X.shape}")
        return X

    # --- passes --------------------------------------------------------------------------

    def forward(self, X, train=None, *, training=None):
        """Run every layer; keep the output for ``backward``.

        Parameters
        ----------
        X : array_like, shape (n_samples, input_size)
        train, training : bool, optional
            Whether dropout layers drop (default False: inference behaviour). ``train`` is the
            original's name.

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_outputs)
        """
        self._check_built()
        training = bool(train if training is None else training)
        out = self._input(X)
        for index, layer in enumerate(self.layers):
            if is_fastgrad_instance(layer, "Dropout"):
                layer.training = training
            try:
                out = layer.forward(out)
            except (ValueError, TypeError) as error:
                # name the layer: a width error of layer 2 is often layer 1's output
                _add_note(error, f"model: raised in the forward of layer {index} "
                                 f"({type(layer).__name__}), whose input came from "
                                 + (f"layer {index - 1} "
                                    f"({type(self.layers[index - 1]).__name__})"
                                    if index else "X"))
                raise
        self.output = out
        return out

    def backward(self, *args):
        """Fill every layer's ``gradients`` for the cost at the last ``forward``.

        ``backward(Y)`` returns dL/dX. ``backward(AL, Y)`` (the original's form) returns the
        original's list of ``{"dW", "db"}`` per layer (None for layers without parameters).

        Parameters
        ----------
        *args : Y, or AL and Y
            The targets, with the output of the last ``forward`` before them optionally.
        """
        if len(args) not in (1, 2):
            raise TypeError(f"backward: expected backward(Y) or backward(AL, Y), got "
                            f"{len(args)} arguments")
        if self.output is None:
            raise RuntimeError("backward: call forward(X) before backward(Y)")
        self._check_configured()
        Y = args[-1]
        if len(args) == 2 and np.shape(args[0]) != np.shape(self.output):
            raise ValueError(f"AL: expected the output of the last forward pass, shape "
                             f"{np.shape(self.output)}, got {np.shape(args[0])}")
        AL = self.output if len(args) == 1 else args[0]
        grad = self._cost_pf.backward(AL, Y)
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        if len(args) == 1:
            return grad
        return [{"dW": layer.gradients["W"], "db": layer.gradients["b"]}
                if getattr(layer, "trainable", False) else {"dW": None, "db": None}
                for layer in self.layers]

    def predict(self, X):
        """Return the model's output for ``X`` (inference behaviour: dropout off).

        Parameters
        ----------
        X : array_like, shape (n_samples, input_size)

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_outputs)
        """
        return self.forward(X, training=False)

    def loss(self, X, Y):
        """Return the cost of the predictions for ``X`` against ``Y``."""
        self._check_configured()
        return float(self._cost_pf.forward(self.forward(X), Y))

    # --- training ------------------------------------------------------------------------

    def _targets(self, Y, n_samples):
        Y = np.asarray(Y)
        if Y.dtype.kind not in "biuf":
            raise TypeError(f"Y: expected a numeric array, got dtype {Y.dtype}")
        if Y.ndim == 0 or Y.shape[0] != n_samples:
            raise ValueError(f"Y: expected {n_samples} samples (rows of X), got shape {Y.shape}")
        last = self.layers[-1]
        if is_fastgrad_instance(self.cost, "Loss") and is_fastgrad_instance(last,
                                                                            "FullyConnected"):
            n_out = last.n_out
            if n_out is not None:
                Y, _ = self.cost._arrays(Y, np.empty((n_samples, n_out), dtype=self.dtype))
        return Y

    def train(self, X, Y, epochs=1, learning_rate=None, batch_size=None, verbose=False, *,
              shuffle=True, seed=None):
        """Train; append the cost of every batch to ``costs``.

        Parameters
        ----------
        X : array_like, shape (n_samples, input_size)
        Y : array_like, shape (n_samples, n_outputs)
            Targets (1-D labels are accepted for one output, class indices for the
            categorical cross-entropy).
        epochs : int
        learning_rate : float, optional
            Sets the optimizer's learning rate; by default the optimizer's own (0.001 unless
            given) is kept.
        batch_size : int, optional
            None trains on the full batch. The samples are split into
            ``n_samples // batch_size`` batches of near-equal size, as the original did.
        verbose : bool
            Print the cost up to ten times (``Cost on epoch 10: 0.1234``).
        shuffle : bool
            Shuffle the samples every epoch.
        seed : int, optional
            Seed of the shuffling (and dropout); by default NumPy's global generator.

        Notes
        -----
        When every layer is fastgrad's dense or dropout layer with a built-in activation, the
        cost is built in and the optimizer fastgrad's, each step runs fused with reused
        buffers (see ``fastgrad._training``); otherwise through ``forward``, ``backward`` and
        ``optimizer.step``. Both compute the same numbers up to rounding.
        """
        self._check_configured()
        X = self._input(X)
        n_samples = X.shape[0]
        Y = self._targets(Y, n_samples)
        epochs = check_positive(epochs, "epochs", integer=True)
        if batch_size is None:
            batch_size = n_samples
        batch_size = check_positive(batch_size, "batch_size", integer=True)
        if not isinstance(verbose, (bool, np.bool_)):
            raise TypeError(f"verbose: expected True or False, got {verbose!r}")
        if learning_rate is not None:
            self.optimizer.learning_rate = learning_rate
        source = np.random if seed is None else np.random.RandomState(
            check_positive(seed, "seed", integer=True, allow_zero=True))
        if n_samples == 0:
            raise ValueError("X: expected at least one sample")
        sections = max(1, n_samples // batch_size)
        edges = np.cumsum([0] + [n_samples // sections + (1 if k < n_samples % sections else 0)
                                 for k in range(sections)])
        trainer = self._trainer
        if trainer is None or not trainer.current(self):
            trainer = self._trainer = _training.fast_path(self)
        num_prints = min(10, epochs)
        with one_blas_thread(self._small_products(batch_size)):
            self._epochs(X, Y, epochs, shuffle, source, edges, trainer, verbose, num_prints)

    #: Multiply-adds per matrix product below which training keeps BLAS on one thread.
    SMALL_PRODUCT = 2**24

    def _small_products(self, batch_size):
        widths = [self.input_size] + [layer.n_out for layer in self.layers
                                      if is_fastgrad_instance(layer, "FullyConnected")]
        return max(batch_size * a * b for a, b in itertools.pairwise(widths)) < \
            self.SMALL_PRODUCT

    def _epochs(self, X, Y, epochs, shuffle, source, edges, trainer, verbose, num_prints):
        n_samples = X.shape[0]
        cost = None
        # Like the original, each epoch shuffles the previous epoch's order (it permuted the
        # already shuffled X), so a seeded run follows the original's batches exactly.
        order = np.arange(n_samples)
        for epoch in range(1, epochs + 1):
            if shuffle:
                order = order[source.permutation(n_samples)]
            for start, stop in itertools.pairwise(edges):
                rows = order[start:stop]
                if trainer is not None:
                    cost = trainer.step(X, Y, rows)
                else:
                    cost = self._general_step(X[rows], Y[rows])
                self.costs.append(np.float64(cost))
            if verbose and (epoch % (epochs // num_prints) == 0 or epoch == epochs):
                print(f"Cost on epoch {epoch}: {round(float(cost), 5)}")

    def _general_step(self, X, Y):
        AL = self.forward(X, training=True)
        cost = self._cost_pf.forward(AL, Y)
        self.backward(Y)
        self.optimizer.step(self.layers)
        return float(np.asarray(cost))

    # --- summary, save and load -----------------------------------------------------------

    def summary(self, print_table=True):
        """Print a table of the layers and their parameter counts; return the total.

        Parameters
        ----------
        print_table : bool
            Print the table and the total (False: only return the total).

        Returns
        -------
        int
            The number of parameters.
        """
        counts = [sum(int(np.size(v)) for v in getattr(layer, "parameters", {}).values())
                  for layer in self.layers]
        total = sum(counts)
        if print_table:
            rows = [("Layer type", "Parameters")] + [
                (type(layer).__name__, str(count))
                for layer, count in zip(self.layers, counts, strict=True)]
            widths = [max(len(row[k]) for row in rows) + 2 for k in range(2)]
            rule = "+" + "+".join("-" * w for w in widths) + "+"
            lines = [rule]
            for k, row in enumerate(rows):
                lines.append("|" + "|".join(cell.center(w) for cell, w in
                                            zip(row, widths, strict=True)) + "|")
                if k == 0:
                    lines.append(rule)
            lines.append(rule)
            print("\n".join(lines))
            print("Total parameters:", total)
        return total

    def save(self, name="parameters.json", dir=""):
        """Write the weights and biases of the layers that have them to a JSON file.

        The format is the original's: a list of ``{"W": nested list, "b": nested list}``.

        Parameters
        ----------
        name : str
            File name.
        dir : str
            Prefix prepended to ``name`` (the original's argument; a directory ending in a
            separator, or a path).
        """
        self._check_built()
        data = [{"W": layer.parameters["W"].tolist(), "b": layer.parameters["b"].tolist()}
                for layer in self.layers if getattr(layer, "trainable", False)]
        with open(_path(name, dir), "w") as file:
            json.dump(data, file)

    def load(self, name="parameters.json", dir=""):
        """Read weights and biases written by :meth:`save` into the layers.

        Parameters
        ----------
        name, dir : str
            As for :meth:`save`.

        Raises
        ------
        ValueError
            When the file's layer count or shapes do not match the model.
        """
        with open(_path(name, dir)) as file:
            data = json.load(file)
        if not isinstance(data, list) or not all(isinstance(d, dict) and {"W", "b"} <= set(d)
                                                 for d in data):
            raise ValueError(f"{_path(name, dir)}: expected a list of {{'W', 'b'}} objects")
        self.parameters = data
        first = next((layer for layer in self.layers if getattr(layer, "trainable", False)),
                     None)
        if self.input_size is None and first is not None:
            self.input_size = first.n_in

    def __repr__(self):
        lines = [f"Model(input_size={self.input_size}, cost={self.cost_type!r})"]
        lines += [f"  {layer!r}" for layer in self.layers]
        return "\n".join(lines)


def _path(name, dir):
    if not isinstance(name, (str, os.PathLike)) or not isinstance(dir, (str, os.PathLike)):
        raise TypeError(f"name, dir: expected str paths, got {name!r}, {dir!r}")
    return os.fspath(dir) + os.fspath(name)


class NeuralNetwork(Model):
    """The CS189-style network: layers from a list of argument dictionaries.

    Parameters
    ----------
    loss : str or Loss
        ``"cross_entropy"`` or a loss object (``losses.CrossEntropy()``, any cost).
    layer_args : sequence of dict
        One per layer: ``{"name": "fully_connected", "activation": "relu",
        "weight_init": "xavier_uniform", "n_out": 10}``.
    optimizer_args : dict, optional
        ``{"name": "SGD", "lr": 0.01, "momentum": 0.9}`` (also ``"adam"``, ``"rmsprop"``,
        ...; ``lr`` or ``learning_rate``).
    seed : int, optional
        Seeds NumPy's global generator, as the original did.
    input_size : int, optional
        Build the parameters now; otherwise on the first ``forward``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad.model import NeuralNetwork
    >>> net = NeuralNetwork("cross_entropy",
    ...                     [{"name": "fully_connected", "activation": "relu", "n_out": 8},
    ...                      {"name": "fully_connected", "activation": "softmax", "n_out": 3}],
    ...                     {"name": "SGD", "lr": 0.1}, seed=0)
    >>> X = np.random.randn(12, 4); Y = np.eye(3)[np.arange(12) % 3]
    >>> out = net.forward(X)
    >>> loss = net.backward(Y, out)
    >>> net.update()
    >>> out.shape
    (12, 3)
    """

    def __init__(self, loss="cross_entropy", layer_args=(), optimizer_args=None, logger=None,
                 seed=None, *, input_size=None, dtype=np.float64):
        super().__init__()
        if seed is not None:
            # the original seeded the global generator, which the layers then draw from
            np.random.seed(check_positive(seed, "seed", integer=True,  # noqa: NPY002
                                          allow_zero=True))
        self.logger = logger
        self.loss = _losses.initialize_loss(loss) if isinstance(loss, str) else loss
        for index, args in enumerate(layer_args):
            if not isinstance(args, dict):
                raise TypeError(f"layer_args[{index}]: expected a dict, got "
                                f"{type(args).__name__}")
            self.add(initialize_layer(**args))
        if not self.layers:
            raise ValueError("layer_args: expected at least one layer")
        options = dict(optimizer_args or {"name": "SGD"})
        name = options.pop("name", "SGD")
        if "lr" in options:
            options["learning_rate"] = options.pop("lr")
        for unused in ("lr_scheduler", "lr_decay", "stage_length", "staircase", "clip_norm"):
            options.pop(unused, None)
        self.cost_type = self.loss
        self.cost = _costs.internal_loss(self.loss)
        self._cost_pf = _costs.as_predictions_first(self.loss)
        self.optimizer = _optimizers.get(name, **options)
        self.dtype = np.dtype(dtype)
        if input_size is not None:
            self._build(input_size)

    def _build(self, input_size):
        self.input_size = int(check_positive(input_size, "input_size", integer=True))
        n_in = self.input_size
        for layer in self.layers:
            n_in = layer.build(n_in, dtype=self.dtype)

    def forward(self, X, train=None, *, training=None):
        """Run every layer (building the parameters on the first call)."""
        if self.input_size is None:
            X = as_float_array(X, "X", ndim=2, allow_int=True, dtype=self.dtype)
            self._build(X.shape[1])
        return super().forward(X, train, training=training)

    def backward(self, target, out=None):
        """Backpropagate the loss of ``out`` (default: the last output) against ``target``.

        Parameters
        ----------
        target : array_like
            The labels ``Y``.
        out : array_like, optional
            The network's output from the last ``forward``.

        Returns
        -------
        float
            The loss, as the original returned.
        """
        if out is not None:
            Model.backward(self, out, target)
        else:
            Model.backward(self, target)
        return float(self.cost.forward(target, self.output))

    def update(self, epoch=None):
        """One optimizer step from the gradients of the last ``backward``."""
        self.optimizer.step(self.layers)

    def predict(self, X, Y=None):
        """Return the output for ``X``; with ``Y``, the pair ``(output, loss)`` like the original.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        Y : array_like, optional
        """
        out = self.forward(X, training=False)
        if Y is None:
            return out
        return out, float(self.cost.forward(Y, out))


def initialize_model(name=None, loss="cross_entropy", layer_args=(), optimizer_args=None,
                     logger=None, seed=None):
    """Build a :class:`NeuralNetwork` (the CS189-style factory; ``name`` is a label)."""
    return NeuralNetwork(loss, layer_args, optimizer_args, logger, seed)
