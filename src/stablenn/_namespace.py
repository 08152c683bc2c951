"""Array namespaces: resolve once at the public boundary, pass ``xp`` down.

Nothing here imports a backend the caller did not pass: backends are recognised through
``array_api_compat``'s ``is_*_array`` helpers, which look at the object's type only.
"""

from __future__ import annotations

import contextlib
from typing import Any

import array_api_compat as compat

from . import _messages as msg

Array = Any
Namespace = Any

__all__: list[str] = []


def is_array(value: object) -> bool:
    """Whether ``value`` is an array of a library the array API standard covers."""
    # Python numbers are not arrays (NumPy scalars, which subclass float, are)
    return bool(compat.is_array_api_obj(value)) and type(value) not in (int, float, complex, bool)


def namespace(**arrays: object) -> Namespace:
    """The array namespace shared by the named arrays (``None`` values are skipped).

    Raises ``TypeError`` naming the argument for a non-array, and for arrays of different
    libraries.
    """
    given = {}
    first = next(iter(arrays), None)
    if first is not None and arrays[first] is None:  # the first array argument is required
        raise msg.not_an_array(first, None)
    for name, value in arrays.items():
        if value is None:
            continue
        if not is_array(value):
            raise msg.not_an_array(name, value)
        given[name] = value
    try:
        xp = compat.array_namespace(*given.values())
    except TypeError:
        kinds = {name: backend_name(value) for name, value in given.items()}
        raise msg.mixed_backends(kinds) from None
    if compat.is_jax_namespace(xp):
        return _accurate_jax(xp)
    return xp


_ACCURATE: list[Any] = []


def _accurate_jax(jnp: Namespace) -> Namespace:
    """jax.numpy with float64 exp, expm1 and log1p that round like NumPy's (`_jax_accurate`)."""
    if not _ACCURATE:
        from ._jax_accurate import AccurateJax

        _ACCURATE.append(AccurateJax(jnp))
    return _ACCURATE[0]


def backend_name(x: Array) -> str:
    """Short name of the library that owns ``x``: numpy, torch, jax, cupy, dask, array_api_strict."""
    if compat.is_numpy_array(x):
        return "numpy"
    if compat.is_torch_array(x):
        return "torch"
    if compat.is_jax_array(x):
        return "jax"
    if compat.is_cupy_array(x):
        return "cupy"
    if compat.is_dask_array(x):
        return "dask"
    if compat.is_array_api_strict_namespace(compat.array_namespace(x)):
        return "array_api_strict"
    return type(x).__module__.split(".")[0]


def quiet(xp: Namespace) -> contextlib.AbstractContextManager[Any]:
    """Silence NumPy's floating-point warnings for intended overflow/underflow (NumPy, and
    array-api-strict, whose operations are NumPy's)."""
    if compat.is_numpy_namespace(xp) or compat.is_array_api_strict_namespace(xp):
        import numpy as np

        return np.errstate(all="ignore")
    return contextlib.nullcontext()


def device(x: Array) -> Any:
    return compat.device(x)


def is_lazy(x: Array) -> bool:
    """Arrays whose values cannot be looked at without computing them (Dask, JAX tracers)."""
    if compat.is_dask_array(x):
        return True
    if compat.is_jax_array(x):
        import jax

        return isinstance(x, jax.core.Tracer)
    return False


def can_read_values(x: Array) -> bool:
    """Whether value checks (labels in [0, 1], indices in range) are cheap and safe here."""
    if is_lazy(x) or compat.is_jax_array(x):
        return False
    if compat.is_torch_array(x):
        return x.device.type == "cpu" and not _torch_compiling()
    return compat.is_numpy_array(x) or backend_name(x) == "array_api_strict"


def _torch_compiling() -> bool:
    import torch

    return bool(torch.compiler.is_compiling())


def scalar_if_numpy(xp: Namespace, a: Array) -> Array:
    """NumPy's convention for full reductions (as SciPy returns them): a 0-d result is a
    NumPy scalar.  Other namespaces keep their 0-d arrays."""
    if compat.is_numpy_namespace(xp) and getattr(a, "ndim", None) == 0 and hasattr(a, "__getitem__"):
        return a[()]
    return a
