"""Run the ``nojit`` subset again with Numba disabled, so kernel bodies execute as Python.

That is how the kernel code is covered and how a kernel that only works by accident of
compilation (or a typo in a branch Numba never compiled) is caught.
"""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def test_nojit_subset_passes_with_numba_disabled():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "nojit", "-p", "no:cacheprovider",
         "-p", "no:randomly", str(TESTS)],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert " passed" in completed.stdout
