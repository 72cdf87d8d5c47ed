"""Numba kernels of fastgrad (installed as ``fastgrad.kernels``).

Kernels take contiguous float arrays of one dtype and never see Python objects. Users import
from ``fastgrad``; these modules are the compute layer behind it.
"""

from . import _cache

# Before any kernel is decorated: their compiled code goes to a per-user cache folder, not into
# the install folder (see _cache).
_cache.install()
