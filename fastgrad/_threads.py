"""Parallel kernels only where it pays.

A Numba parallel region wakes its worker threads; after a pause (any Python work between two
kernel calls) that costs ~35 us on this kind of machine, against ~2 us for a 6-element kernel
run on the calling thread. Below ``SERIAL_BELOW`` elements of work, kernels therefore run with
one thread (``numba.set_num_threads`` is thread-local, so other threads are not affected).
"""

import contextlib

import numba

#: Elements of work under which a kernel runs on the calling thread only.
SERIAL_BELOW = 2**14


@contextlib.contextmanager
def threads_for(work):
    """Run the enclosed kernels on one thread when ``work`` (elements) is small."""
    if work >= SERIAL_BELOW:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
