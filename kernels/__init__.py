"""Numba kernels of fastgrad (installed as ``fastgrad.kernels``).

Kernels take contiguous float arrays of one dtype and never see Python objects. Users import
from ``fastgrad``; these modules are the compute layer behind it.
"""
