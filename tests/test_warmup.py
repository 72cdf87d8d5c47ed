"""warmup() compiles every kernel that fastgrad calls from Python."""

import importlib
import io
import pkgutil
from pathlib import Path

import numba
import numpy as np
import pytest

import fastgrad
import fastgrad.kernels
from fastgrad import warmup
from fastgrad._warmup import BackgroundCompile, CompileNotice


def _dispatchers():
    for info in pkgutil.iter_modules(fastgrad.kernels.__path__):
        module = importlib.import_module(f"fastgrad.kernels.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and \
                    obj.__module__ == module.__name__:
                yield f"{info.name}.{name}", obj


def test_warmup_compiles_every_kernel_called_from_python():
    if numba.config.DISABLE_JIT:
        pytest.skip("kernels are plain Python with NUMBA_DISABLE_JIT")
    seconds = warmup()
    assert seconds >= 0
    # the parallel kernels are the entry points (black-box methods combine in NumPy)
    entry_points = {name: d for name, d in _dispatchers() if d.targetoptions.get("parallel")}
    assert "directions.perturb_along" in entry_points
    missing = sorted(name for name, d in entry_points.items() if not d.signatures)
    assert not missing


def test_warmup_rejects_other_dtypes():
    with pytest.raises(TypeError, match="dtypes"):
        warmup(dtypes=(np.int64,))


def test_kernels_are_cached_in_the_user_cache_not_next_to_their_source():
    if numba.config.DISABLE_JIT:
        pytest.skip("nothing is compiled with NUMBA_DISABLE_JIT")
    from fastgrad.kernels import _cache, differences

    locator = differences.combine._cache._impl.locator
    assert isinstance(locator, _cache.KernelCacheLocator)
    path = Path(locator.get_cache_path())
    assert path.name == f"{fastgrad.__version__}-{_cache.sources_hash()}"
    assert _cache.KERNELS_DIR not in path.parents


def test_every_build_has_a_cache_entry_of_its_own():
    # Numba names a cache entry by the function's qualified name and keys it by signature and
    # bytecode, not by the options: a serial and a parallel build of one function would load
    # each other's code (kernels._config.build gives each build its own name)
    if numba.config.DISABLE_JIT:
        pytest.skip("nothing is compiled with NUMBA_DISABLE_JIT")
    seen = {}
    for name, dispatcher in _dispatchers():
        func = dispatcher.py_func
        key = (func.__module__, func.__qualname__, func.__code__.co_firstlineno)
        assert key not in seen, f"{name} and {seen[key]} share one cache entry"
        seen[key] = name
    from fastgrad.kernels import dense, optimizers

    assert not optimizers.update_serial.targetoptions.get("parallel")
    assert optimizers.update.targetoptions.get("parallel")
    assert dense.bias_activation_serial.py_func is not dense.bias_activation_parallel.py_func


def test_only_fastgrad_kernels_use_its_cache_folder(tmp_path):
    from fastgrad.kernels import _cache

    user_file = tmp_path / "user_module.py"
    user_file.write_text("def f(x):\n    return x\n")
    namespace = {}
    exec(compile(user_file.read_text(), str(user_file), "exec"), namespace)
    assert _cache.KernelCacheLocator.from_function(namespace["f"], str(user_file)) is None


def test_cache_folder_follows_numba_cache_dir(tmp_path, monkeypatch):
    from fastgrad.kernels import _cache

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    assert _cache.cache_dir().parent == tmp_path / "fastgrad"
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert _cache.cache_dir().parent.name == "fastgrad"


def test_compile_notice_speaks_once_and_only_for_a_compile():
    if numba.config.DISABLE_JIT:
        pytest.skip("nothing is compiled with NUMBA_DISABLE_JIT")

    @numba.njit
    def fastgrad_like(x):
        return x + 1

    # pretend it is one of fastgrad's kernels; a fresh function always compiles
    fastgrad_like.py_func.__module__ = "fastgrad.kernels.example"
    stream = io.StringIO()
    with CompileNotice(stream) as notice:
        fastgrad_like(1.0)
        fastgrad_like(1)  # a second compile: no second line
        fastgrad_like(2.0)  # no compile
    assert stream.getvalue().count("compiling fastgrad's Numba kernels") == 1
    assert notice.kernels == {"example.fastgrad_like"} and notice.seconds > 0
    with CompileNotice(stream) as quiet:
        fastgrad_like(3.0)
    assert quiet.kernels == set()


def test_background_compile_marks_its_work_done(tmp_path, monkeypatch):
    if numba.config.DISABLE_JIT:
        pytest.skip("nothing is compiled with NUMBA_DISABLE_JIT")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    helper = BackgroundCompile([("layers", "float32")])
    assert not helper.marker.exists()
    with helper:
        assert helper.process is not None
    assert helper.marker.exists()
    assert BackgroundCompile([("layers", "float32")]).start().process is None  # cached


def test_background_compile_rejects_unknown_jobs():
    with pytest.raises(ValueError, match="group"):
        BackgroundCompile([("everything", "float64")])
    with pytest.raises(TypeError, match="float32 or float64"):
        BackgroundCompile([("layers", "int8")])


def _versions_differing_only_in_read_only_arrays():
    for name, dispatcher in _dispatchers():
        seen = {}
        for signature in dispatcher.signatures:
            key = tuple(t.copy(readonly=False) if isinstance(t, numba.types.Array) else t
                        for t in signature)
            if key in seen:
                yield name, seen[key], signature
            seen[key] = signature


def test_read_only_inputs_compile_no_second_version_of_a_kernel():
    """A check hands fn read-only views of x and a read-only array is another argument type
    to Numba; the wrappers pass one kind per argument, so no kernel compiles twice for it
    (seconds on a first run)."""
    if numba.config.DISABLE_JIT:
        pytest.skip("nothing is compiled with NUMBA_DISABLE_JIT")
    from fastgrad import check_gradients
    from fastgrad.activations import SoftMax, TanH
    from fastgrad.layers import FullyConnected
    from fastgrad.losses import CrossEntropy

    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        X = rng.normal(size=(4, 3)).astype(dtype)
        dLdY = rng.normal(size=(4, 3)).astype(dtype)
        frozen = X.copy()
        frozen.flags.writeable = False
        Y = np.eye(3, dtype=dtype)[[0, 1, 2, 0]]
        P = SoftMax().forward(X)
        loss = CrossEntropy()
        layer = FullyConnected(3, activation="tanh", seed=0)
        layer.forward(X)
        layer.backward(dLdY)
        for activation in (TanH(), SoftMax()):
            activation.forward(frozen)
            activation.backward(frozen, dLdY)
            check_gradients(activation.forward, activation.backward(X, dLdY), X, dLdY,
                            method="structured")
        check_gradients(lambda p, loss=loss, Y=Y: loss.forward(Y, p), loss.backward(Y, P), P, 1.0,
                        method="structured")
        for name in ("W", "b"):
            check_gradients(layer.forward_with_param(name, X), layer.gradients[name],
                            layer.parameters[name], dLdY, method="structured")
    assert list(_versions_differing_only_in_read_only_arrays()) == []
