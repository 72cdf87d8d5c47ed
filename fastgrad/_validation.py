"""Input validation shared by every public entry point.

Each helper returns a clean array (or raises) with a message that names the argument, what
was expected and what was received.
"""

import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__}"


def as_float_array(value, name, *, ndim=None, min_ndim=0, allow_int=False, dtype=None,
                   finite=False, copy=False, writeable=False):
    """Return ``value`` as a C-contiguous float32/float64 array, or raise.

    Parameters
    ----------
    value : array_like
        What the caller passed.
    name : str
        The argument's name, used in error messages.
    ndim : int or tuple of int, optional
        Accepted numbers of dimensions.
    min_ndim : int
        Smallest accepted number of dimensions.
    allow_int : bool
        Accept integer and boolean arrays, converting them to float64 (labels, data);
        otherwise they raise ``TypeError`` (a perturbation of an integer is meaningless).
    dtype : numpy dtype, optional
        Convert to this float dtype after validation.
    finite : bool
        Raise ``ValueError`` if any element is NaN or infinite.
    copy : bool
        Always return a new array, never a view of the caller's data.
    writeable : bool
        Copy a read-only array (such as the read-only view of x a check hands fn). For
        arrays that go to a kernel: a read-only array is another argument type to Numba, and
        passing it on would compile the kernel a second time.
    """
    if isinstance(value, (np.matrix, np.ma.MaskedArray)):
        # (np.asarray drops what makes them what they are: * is a matrix product on a
        # matrix, a mask hides elements; fn would see another function)
        kind = "np.matrix" if isinstance(value, np.matrix) else "masked array"
        raise TypeError(f"{name}: expected a plain NumPy array, got a {kind}; pass "
                        + ("np.asarray(...) and use @ for products in fn" if kind ==
                           "np.matrix" else "its .filled(...) data and apply the mask in fn"))
    try:
        array = np.asarray(value)
    except Exception as error:  # ragged lists and the like
        raise TypeError(f"{name}: expected a real float array, got {_describe(value)} "
                        f"that NumPy cannot convert ({error})") from error
    kind = array.dtype.kind
    if kind in "iub" and allow_int:
        array = array.astype(np.float64 if dtype is None else dtype)
    elif kind in "iub":
        raise TypeError(f"{name}: expected a float32 or float64 array, got integer dtype "
                        f"{array.dtype}; convert it with .astype(np.float64)")
    elif kind != "f":
        raise TypeError(f"{name}: expected a real float32 or float64 array, got dtype "
                        f"{array.dtype} ({_describe(value)})")
    elif array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {array.dtype}")
    if ndim is not None:
        accepted = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if array.ndim not in accepted:
            wanted = " or ".join(f"{n}-D" for n in accepted)
            raise ValueError(f"{name}: expected a {wanted} array, got shape {array.shape}")
    if array.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimension(s), "
                         f"got shape {array.shape}")
    if dtype is not None and array.dtype != dtype:
        array = array.astype(dtype)
    if finite and not np.all(np.isfinite(array)):
        if array.ndim == 0:
            raise ValueError(f"{name}: expected a finite number, got {float(array)}")
        bad = np.argwhere(~np.isfinite(array))
        first = tuple(int(i) for i in bad[0]) if bad.size else ()
        raise ValueError(f"{name}: contains {len(bad)} NaN or infinite element(s), "
                         f"the first at index {first}")
    if copy or (writeable and not array.flags.writeable):
        return np.array(array, order="C", copy=True)
    return np.asarray(array, order="C")  # (ascontiguousarray would make a 0-d array 1-d)


def check_positive(value, name, *, integer=False, allow_zero=False):
    """Return ``value`` if it is a positive real (or integer) number, else raise."""
    wanted = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        kind = "an integer" if integer else "a real number"
        raise TypeError(f"{name}: expected {kind}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite value {bound}, got {value!r}")
    return value


def check_same_shape(a, a_name, b, b_name):
    """Raise ``ValueError`` unless two arrays have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{b_name}: expected shape {a.shape} (the shape of {a_name}), "
                         f"got {b.shape}")


def check_step(step, name, dtype, scale, default_hint):
    """An explicit step must move every element by more than a rounding error, and less than
    the size at which ``x + step`` keeps under half of x's digits.

    ``scale`` is ``max(1, max |x|)``; ``default_hint`` says how to get the default step.
    """
    from ._tolerances import MIN_STEP_ULPS

    eps = float(np.finfo(dtype).eps)
    smallest = MIN_STEP_ULPS * eps * scale
    if step < smallest:
        raise ValueError(f"{name}: {step:g} is below what {np.dtype(dtype)} can resolve at x "
                         f"(the smallest usable step is {smallest:.3g}, {MIN_STEP_ULPS} ulps of "
                         f"max(1, max |x|)); {default_hint}")
    largest = scale / np.sqrt(eps)
    if step > largest:
        raise ValueError(f"{name}: {step:g} is too large to difference x: x + {name} keeps "
                         f"fewer than half of x's digits beyond {largest:.3g} (1/sqrt(eps) of "
                         f"max(1, max |x|) in {np.dtype(dtype)}); {default_hint}")


def add_note(error, note):
    """Add a note to an exception (Python 3.10 keeps it where 3.11 would)."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        error.__notes__ = [*getattr(error, "__notes__", []), note]
