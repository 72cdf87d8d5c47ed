"""Where Numba keeps fastgrad's compiled kernels: a per-user cache, never the install folder.

Numba's default (``cache=True``) writes next to the source, into
``site-packages/fastgrad/kernels/__pycache__``. pip does not know those files: ``pip
uninstall`` leaves the folder behind, and the leftover folder turns ``fastgrad`` into a
namespace package that shadows a later editable install. A reinstall also throws the compiled
kernels away.

Instead every kernel of this package is cached in one folder per user::

    <root>/fastgrad/<fastgrad version>-<hash of the kernel sources>/

``<root>`` is ``NUMBA_CACHE_DIR`` when the user set it (their choice wins), else the
platform's user cache folder (``~/.cache`` on Linux). The folder name changes whenever a
kernel's source changes, so a new version never loads stale code, while reinstalling the
same version (regular or editable, with or without extras) finds its kernels again.

The folder is chosen through Numba's cache locators (``numba.core.caching``): a locator for
the files of this package is put first in Numba's list and answers for them only; every other
function, the user's own included, is cached as Numba would cache it anyway.
"""

import functools
import hashlib
import os
import tempfile
from pathlib import Path

from numba.core import caching, config

#: The folder of the kernel sources (wherever the package was installed or mapped from).
KERNELS_DIR = Path(__file__).resolve().parent


def _version():
    # One place holds the version (fastgrad/_version.py); the kernels may be loaded from a
    # source tree where no package metadata exists, so it is read from there, not from pip.
    try:
        from fastgrad._version import __version__
    except ImportError:  # the kernels used on their own
        return "unknown"
    return __version__


@functools.lru_cache(maxsize=1)
def sources_hash():
    """SHA-256 (hex, 12 characters) of every kernel source file, in name order."""
    digest = hashlib.sha256()
    for path in sorted(KERNELS_DIR.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_root():
    """The folder that holds fastgrad's kernel caches (one sub-folder per kernel version)."""
    user_dir = config.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR", "")
    if user_dir:
        return Path(user_dir) / "fastgrad"
    try:
        from numba.misc.appdirs import AppDirs  # what Numba itself uses for its user cache

        return Path(AppDirs(appname="fastgrad", appauthor=False).user_cache_dir)
    except ImportError:
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastgrad"


def cache_dir():
    """The folder compiled kernels of this version are written to and read from."""
    return cache_root() / f"{_version()}-{sources_hash()}"


@functools.cache
def _file_hash(path):
    return hashlib.sha256(Path(path).read_bytes()).digest()


class KernelCacheLocator(caching._CacheLocator):
    """Numba cache locator for the functions defined in this package's files only."""

    def __init__(self, py_func, py_file, cache_path):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(cache_path)

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        # the file's content, not its modification time: a reinstall rewrites the files
        return _file_hash(self._py_file)

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            if Path(py_file).resolve().parent != KERNELS_DIR:
                return None  # not a fastgrad kernel: Numba's own locators decide
        except OSError:
            return None
        # an unwritable home (a container, a CI sandbox) falls back to the temp folder,
        # still outside the install folder
        user = os.getuid() if hasattr(os, "getuid") else "user"
        fallback = Path(tempfile.gettempdir()) / f"fastgrad-{user}"
        for path in (cache_dir(), fallback / cache_dir().name):
            locator = cls(py_func, py_file, path)
            try:
                locator.ensure_cache_path()
            except OSError:
                continue
            return locator
        return None


def _locator_list():
    # numba >= 0.61 names the class CacheImpl; older releases _CacheImpl
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    return getattr(impl, "_locator_classes", None)


def install():
    """Put :class:`KernelCacheLocator` first in Numba's locators (idempotent).

    Returns
    -------
    bool
        Whether the locator is in place (False if this Numba has no locator list).
    """
    locators = _locator_list()
    if locators is None:
        return False
    if KernelCacheLocator not in locators:
        locators.insert(0, KernelCacheLocator)
    return True
