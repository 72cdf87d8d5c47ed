"""Parallel kernels only where it pays.

A Numba parallel region wakes its worker threads; after a pause (any Python work between two
kernel calls) that costs ~35 us on this kind of machine, against ~2 us for a 6-element kernel
run on the calling thread. Below ``SERIAL_BELOW`` elements of work, kernels therefore run with
one thread (``numba.set_num_threads`` is thread-local, so other threads are not affected).
Regions nest: small work inside a serial region costs nothing more, and large work inside one
(a big layer's forward called while checking its small bias) gets the caller's threads back.
"""

import threading

import numba

#: Elements of work under which a kernel runs on the calling thread only.
SERIAL_BELOW = 2**14

_state = threading.local()


class threads_for:
    """Context manager: run the enclosed kernels on one thread when ``work`` is small.

    ``work`` is a number of elements. The caller's own thread count is restored on exit.
    """

    __slots__ = ("_saved", "_small")

    def __init__(self, work):
        self._small = work < SERIAL_BELOW
        self._saved = None

    def __enter__(self):
        # while a region forces one thread, _state.caller holds the caller's thread count
        caller = getattr(_state, "caller", None)
        if self._small and caller is None:
            self._saved = (None, numba.get_num_threads())
            numba.set_num_threads(1)
            _state.caller = self._saved[1]
        elif not self._small and caller is not None:
            self._saved = (caller, 1)
            numba.set_num_threads(caller)
            _state.caller = None
        return self

    def __exit__(self, *exc_info):
        if self._saved is not None:
            _state.caller, threads = self._saved
            numba.set_num_threads(threads)
        return False
