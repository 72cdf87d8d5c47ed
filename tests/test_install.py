"""The README's two install commands, in order, in a fresh virtual environment.

``pip install .`` then ``pip install -e ".[test]"`` must leave ``fastgrad`` and ``import
fastgrad`` working in every folder, the repository's root included; compiled kernels go to
the per-user cache (here a temporary ``NUMBA_CACHE_DIR``), never into site-packages; ``pip
uninstall fastgrad`` leaves nothing behind. The new environment gets NumPy, Numba and tqdm
from this one (a ``.pth`` line), so only fastgrad is installed (pip fetches setuptools for the
build, as it would for a user).
"""

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# a black box (plain NumPy, nothing to compile) and a built-in activation (its Numba kernels)
SMALL_CHECK = ("import numpy as np, fastgrad, fastgrad.kernels as k; "
               "from fastgrad.activations import TanH; "
               "x = np.linspace(-1, 1, 6).reshape(2, 3); "
               "r = fastgrad.check_gradients(np.sin, np.cos(x), x); "
               "t = fastgrad.check_gradients(TanH().forward, 1 - np.tanh(x) ** 2, x); "
               "print(fastgrad.__file__, k.__file__, fastgrad.__version__, r.passed and "
               "t.passed and t.method == 'structured')")


def _run(args, cwd, env):
    completed = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=900, check=False)
    assert completed.returncode == 0, (args, completed.stdout, completed.stderr)
    return completed.stdout


def _leftovers(site_packages):
    return sorted(str(p.relative_to(site_packages)) for p in site_packages.rglob("*")
                  if "fastgrad" in p.name.lower() or p.suffix in (".nbi", ".nbc"))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    clone = base / "clone"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".venv*", ".pytest_cache"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    site_packages = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    # this environment's packages (numpy, numba, tqdm, pip, setuptools) after the new one's own
    outer = [p for p in {*site.getsitepackages(), sysconfig.get_paths()["purelib"]}
             if Path(p).is_dir()]
    (site_packages / "_outer_environment.pth").write_text("\n".join(outer) + "\n")
    environ = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environ.update(PATH=f"{bindir}{os.pathsep}{environ.get('PATH', '')}",
                   NUMBA_CACHE_DIR=str(base / "cache"), PYTHONDONTWRITEBYTECODE="1")
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return {"python": str(python), "clone": clone, "site": site_packages, "env": environ,
            "elsewhere": elsewhere, "cache": base / "cache", "bindir": bindir}


def _pip(env, *args):
    return _run([env["python"], "-m", "pip", "--disable-pip-version-check", "--no-input",
                 *args], env["clone"], env["env"])


def test_both_readme_commands_in_order_then_uninstall(env):
    clone, site_packages = env["clone"], env["site"]
    fastgrad_command = str(env["bindir"] / "fastgrad")
    # 1. pip install .  (no dependencies: they come from this environment)
    _pip(env, "install", "--no-deps", ".")
    for folder in (env["elsewhere"], clone):
        out = _run([env["python"], "-c", SMALL_CHECK], folder, env["env"])
        assert out.split()[-1] == "True"
        _run([fastgrad_command, "--help"], folder, env["env"])
    # outside the repository the installed copy answers; in its root the source one does
    installed = _run([env["python"], "-c", SMALL_CHECK], env["elsewhere"], env["env"]).split()
    assert Path(installed[0]).is_relative_to(site_packages)
    assert Path(installed[1]).is_relative_to(site_packages)
    in_root = _run([env["python"], "-c", SMALL_CHECK], clone, env["env"]).split()
    assert Path(in_root[0]) == clone / "fastgrad" / "__init__.py"
    assert Path(in_root[1]) == clone / "kernels" / "__init__.py"
    # compiled kernels are in the user's cache, keyed by version, not in site-packages
    assert list(env["cache"].glob(f"fastgrad/{installed[2]}-*/*.nbi"))
    assert not list(site_packages.rglob("*.nb[ic]"))
    assert not list(clone.rglob("*.nb[ic]"))

    # 2. pip install -e ".[test]"  (the editable install over the regular one)
    _pip(env, "install", "--no-deps", "-e", ".")
    for folder in (env["elsewhere"], clone):
        help_text = _run([fastgrad_command, "--help"], folder, env["env"])
        assert "fastgrad check" in help_text
        out = _run([env["python"], "-c", SMALL_CHECK], folder, env["env"]).split()
        assert Path(out[0]) == clone / "fastgrad" / "__init__.py", folder
        assert Path(out[1]) == clone / "kernels" / "__init__.py", folder
        assert out[-1] == "True"

    # 3. pip uninstall fastgrad leaves nothing behind
    _pip(env, "uninstall", "-y", "fastgrad")
    assert _leftovers(site_packages) == []
