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

import os

# Numba's OpenMP workers spin after every parallel region. Next to a multi-threaded BLAS on a
# small machine they starve the BLAS threads: on 2 cores a 64x784x256 GEMM followed by a dense
# epilogue took 8.3 ms instead of 0.4 ms. A short spin keeps back-to-back kernels fast (29 us)
# and yields to BLAS soon. Set before Numba loads its OpenMP runtime; a user's value wins.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")


# First: where fastgrad.kernels comes from, when Python runs in the repository's root.
from . import _kernels_path  # noqa: F401, I001
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
from ._version import __version__
from ._warmup import warmup

__all__ = [
    "GradCheckResult",
    "ModelCheckResult",
    "WorstElement",
    "__version__",
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
