"""fastgrad: fast numerical gradient checking for NumPy neural-network code.

Check a hand-written backward pass against central finite differences, element by element,
with Numba kernels, and learn exactly which elements are wrong::

    from fastgrad import check_gradients
    result = check_gradients(fn, grad, x, dLdf)
    print(result)        # the relative error, as a float
    result.worst         # the worst elements by index

The layers, activations and losses of fastgrad follow the APIs of common teaching code so
that existing notebooks run with only their imports changed.
"""

from . import (
    activations,
    costs,
    initializers,
    layers,
    losses,
    model,
    optimizers,
    testing,
    utils,
)
from ._checker import check_gradients
from ._model_check import ModelCheckResult, gradient_check
from ._result import GradCheckResult, WorstElement
from ._warmup import warmup

__version__ = "0.1.0"

__all__ = [
    "GradCheckResult",
    "ModelCheckResult",
    "WorstElement",
    "activations",
    "check_gradients",
    "costs",
    "gradient_check",
    "initializers",
    "layers",
    "losses",
    "model",
    "optimizers",
    "testing",
    "utils",
    "warmup",
]
