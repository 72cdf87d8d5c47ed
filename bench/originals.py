"""Plain-NumPy re-implementations of the two teaching libraries, written for the benchmarks.

They do what the originals do, operation for operation, so that a timing against them is a
timing against the original (the code is written here from the originals' documented
behaviour, not copied):

* ``SandboxModel`` and friends: the Keras-like ``sandbox`` package (kaydenkehe/neural-network,
  ``src/sandbox`` at 24fd4fb9). Parameters live in a list of ``{"W", "b"}`` dictionaries, the
  layer's backward takes ``dA`` and the forward cache and returns ``dA_prev, dW, db`` with the
  1/m applied in the layer (the cost's gradient has none), ``dA_prev`` is computed for every
  layer including the first, each epoch shuffles by copying ``X[permutation]`` and splits it
  with ``np.array_split`` into ``m // batch_size`` parts, the optimizer keeps its state in the
  parameter dictionaries, and everything draws from NumPy's global generator.
  One deliberate difference: the original's ``Softmax`` normalised over axis 0 (the samples)
  and returned a derivative of 1; here it normalises each row and its derivative is folded
  into the categorical cross-entropy's (``AL - Y``). Both cost the same handful of passes.
* ``CS189FullyConnected`` and the activations: the CS189-style ``neural_networks`` layer,
  ``forward(X)`` caching ``X`` and ``Z``, ``backward(dLdY)`` filling ``gradients``.
"""

import numpy as np

# --- sandbox ----------------------------------------------------------------------------


class Linear:
    def forward(self, Z):
        return Z

    def backward(self, Z):
        return 1


class ReLU:
    def forward(self, Z):
        return np.maximum(0, Z)

    def backward(self, Z):
        return np.where(Z <= 0, 0, 1)


class Sigmoid:
    def forward(self, Z):
        return 1 / (1 + np.exp(-Z))

    def backward(self, Z):
        s = self.forward(Z)
        return s * (1 - s)


class Softmax:
    def forward(self, Z):
        e = np.exp(Z - Z.max(axis=1, keepdims=True))
        return e / np.sum(e, axis=1, keepdims=True)

    def backward(self, Z):
        return 1     # folded into CategoricalCrossentropy.backward


class BinaryCrossentropy:
    def forward(self, AL, Y):
        return np.squeeze(-1 / Y.shape[0] * np.sum(np.dot(np.log(AL.T), Y)
                                                   + np.dot(np.log(1 - AL.T), 1 - Y)))

    def backward(self, AL, Y):
        return -Y / AL + (1 - Y) / (1 - AL)


class CategoricalCrossentropy:
    def forward(self, AL, Y):
        return np.squeeze(-1 / Y.shape[0] * np.sum(Y * np.log(AL)))

    def backward(self, AL, Y):
        return AL - Y     # through the softmax


class MSE:
    def forward(self, AL, Y):
        return np.squeeze(1 / Y.shape[0] * np.sum(np.square(Y - AL)))

    def backward(self, AL, Y):
        return -2 * (Y - AL)


def glorot_uniform(n_in, n_out):
    limit = np.sqrt(6 / (n_out + n_in))
    W = np.random.uniform(-limit, limit, (n_in, n_out))  # noqa: NPY002 (the global generator)
    return {"W": W, "b": np.zeros((1, n_out))}


class Dense:
    trainable = True

    def __init__(self, units, activation, initializer=glorot_uniform):
        self.units = units
        self.activation = activation
        self.initializer = initializer

    def forward(self, A_prev, W, b):
        Z = np.dot(A_prev, W) + b
        return self.activation.forward(Z), Z

    def backward(self, dA, A_prev, W, b, Z):
        m = A_prev.shape[0]
        dZ = dA * self.activation.backward(Z)
        dW = 1 / m * np.dot(A_prev.T, dZ)
        db = 1 / m * np.sum(dZ, axis=0, keepdims=True)
        dA_prev = np.dot(dZ, W.T)
        return dA_prev, dW, db


class SGD:
    def __init__(self, learning_rate=0.001):
        self.learning_rate = learning_rate

    def configure(self, parameters, layers):
        return parameters

    def update(self, parameters, layers, grad):
        for i in range(len(layers)):
            parameters[i]["W"] -= self.learning_rate * grad[i]["dW"]
            parameters[i]["b"] -= self.learning_rate * grad[i]["db"]
        return parameters


class Adam:
    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.learning_rate = learning_rate
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon

    def configure(self, parameters, layers):
        for p in parameters:
            for k in ("W", "b"):
                p["Vd" + k] = np.zeros(p[k].shape)
                p["Sd" + k] = np.zeros(p[k].shape)
        return parameters

    def update(self, parameters, layers, grad):
        for i in range(len(layers)):
            p, g = parameters[i], grad[i]
            for k in ("W", "b"):
                p["Vd" + k] = self.beta1 * p["Vd" + k] + (1 - self.beta1) * g["d" + k]
                p["Sd" + k] = self.beta2 * p["Sd" + k] + (1 - self.beta2) * np.square(g["d" + k])
                p[k] -= self.learning_rate * p["Vd" + k] / (np.sqrt(p["Sd" + k]) + self.epsilon)
        return parameters


class SandboxModel:
    def __init__(self):
        self.layers, self.parameters, self.caches, self.costs = [], [], [], []

    def add(self, layer):
        self.layers.append(layer)

    def configure(self, cost_type, input_size, optimizer):
        self.cost_type, self.optimizer = cost_type, optimizer
        sizes = [input_size] + [layer.units for layer in self.layers]
        self.parameters = [self.layers[i].initializer(sizes[i], sizes[i + 1])
                           for i in range(len(self.layers))]
        self.parameters = optimizer.configure(self.parameters, self.layers)

    def forward(self, A):
        self.caches = []
        for i, layer in enumerate(self.layers):
            A_prev = A
            A, Z = layer.forward(A_prev, self.parameters[i]["W"], self.parameters[i]["b"])
            self.caches.append({"A_prev": A_prev, "W": self.parameters[i]["W"],
                                "b": self.parameters[i]["b"], "Z": Z})
        return A

    def backward(self, AL, Y):
        grad = [None] * len(self.layers)
        dA = self.cost_type.backward(AL, Y.reshape(AL.shape))
        for i in reversed(range(len(self.layers))):
            dA, dW, db = self.layers[i].backward(dA, **self.caches[i])
            grad[i] = {"dW": dW, "db": db}
        return grad

    def train_step(self, X_batch, Y_batch):
        AL = self.forward(X_batch)
        cost = self.cost_type.forward(AL, Y_batch)
        grad = self.backward(AL, Y_batch)
        self.parameters = self.optimizer.update(self.parameters, self.layers, grad)
        self.costs.append(cost)

    def train(self, X, Y, epochs, learning_rate=0.001, batch_size=None):
        self.optimizer.learning_rate = learning_rate
        m = X.shape[0]
        if not batch_size:
            batch_size = m
        for _ in range(epochs):
            permutation = np.random.permutation(m)  # noqa: NPY002 (as the original)
            X, Y = X[permutation, :], Y[permutation, :]
            for X_batch, Y_batch in zip(np.array_split(X, m // batch_size, axis=0),
                                        np.array_split(Y, m // batch_size, axis=0),
                                        strict=True):
                self.train_step(X_batch, Y_batch)


# --- CS189-style layer ---------------------------------------------------------------------


class CS189ReLU:
    def forward(self, Z):
        return np.maximum(0, Z)

    def backward(self, Z, dY):
        return dY * (Z > 0)


class CS189FullyConnected:
    def __init__(self, n_in, n_out, activation, rng):
        limit = np.sqrt(6 / (n_in + n_out))
        self.parameters = {"W": rng.uniform(-limit, limit, (n_in, n_out)),
                           "b": np.zeros((1, n_out))}
        self.activation = activation
        self.cache = {}
        self.gradients = {}

    def forward(self, X):
        W, b = self.parameters["W"], self.parameters["b"]
        Z = X @ W + b
        self.cache = {"X": X, "Z": Z}
        return self.activation.forward(Z)

    def backward(self, dLdY):
        X, Z = self.cache["X"], self.cache["Z"]
        dZ = self.activation.backward(Z, dLdY)
        self.gradients = {"W": X.T @ dZ, "b": dZ.sum(axis=0, keepdims=True)}
        return dZ @ self.parameters["W"].T
