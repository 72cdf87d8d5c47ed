"""Thread-count regions: small work serial, large work with the caller's threads."""

import threading

import numba
import pytest

from fastgrad._threads import SERIAL_BELOW, threads_for

SMALL, LARGE = 6, SERIAL_BELOW


@pytest.fixture
def two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least two Numba threads")
    previous = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(previous)


def test_small_work_is_serial_and_the_callers_count_comes_back(two_threads):
    with threads_for(SMALL):
        assert numba.get_num_threads() == 1
        with threads_for(SMALL):
            assert numba.get_num_threads() == 1
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == 2
    with threads_for(LARGE):
        assert numba.get_num_threads() == 2


def test_large_work_inside_a_serial_region_gets_the_callers_threads(two_threads):
    with threads_for(SMALL):
        with threads_for(LARGE):
            assert numba.get_num_threads() == 2
            with threads_for(SMALL):
                assert numba.get_num_threads() == 1
            assert numba.get_num_threads() == 2
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == 2


def test_a_callers_own_single_thread_is_respected(two_threads):
    numba.set_num_threads(1)
    with threads_for(SMALL):
        with threads_for(LARGE):
            assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == 1


def test_an_exception_restores_the_count(two_threads):
    with pytest.raises(RuntimeError), threads_for(SMALL):
        raise RuntimeError("inside")
    assert numba.get_num_threads() == 2
    with threads_for(LARGE):  # no region is left open
        assert numba.get_num_threads() == 2


def test_regions_are_per_thread(two_threads):
    seen = []

    def other():
        seen.append(numba.get_num_threads())

    with threads_for(SMALL):
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert seen == [numba.config.NUMBA_NUM_THREADS]
