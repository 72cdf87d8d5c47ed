"""The code base is ruff clean (configuration in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


RUFF = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(RUFF is None, reason="ruff is part of the [test] extra")
def test_ruff_clean():
    ruff = RUFF
    completed = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True,
                               check=False)
    assert completed.returncode == 0, completed.stdout[-4000:]
