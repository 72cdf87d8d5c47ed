"""Make ``fastgrad.kernels`` importable from a source checkout (imported first by fastgrad).

An install (regular or editable) maps ``fastgrad.kernels`` to the top-level ``kernels/`` folder
(``package-dir`` in pyproject.toml). Python started in the repository's root finds the source
``fastgrad/`` first, which has no ``kernels/``: then, and only then, the sibling folder is
loaded under the package's name (never as a top-level ``kernels``, which is an unrelated
package on the package index).
"""

import importlib.util
import sys
from pathlib import Path


def _map_source_kernels():
    """Load the sibling ``kernels/`` as ``fastgrad.kernels`` unless something provides it."""
    name = "fastgrad.kernels"
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return
    folder = Path(__file__).resolve().parent.parent / "kernels"
    if not (folder / "__init__.py").is_file():
        raise ImportError(f"fastgrad.kernels is not installed and {folder} does not exist: "
                          "reinstall fastgrad (pip install .)")
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    sys.modules["fastgrad"].kernels = module


_map_source_kernels()
