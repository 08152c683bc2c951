"""Dtype policy: which floating dtype a result has, and which dtype we compute in.

- Integer and boolean inputs are promoted to the namespace's default real floating dtype.
- Complex and non-numeric inputs are refused.
- float16, bfloat16 and float32 are computed in float64 where the backend has it (JAX needs
  ``jax_enable_x64``), and rounded once to their own dtype at the end: one rounding of a
  nearly exact value, so at most 1 ULP, and no sum ever accumulates in a 16-bit type.
- float64 is computed in float64 with error-free transformations where a plain formula would
  round more than once (see ``_kernels/_dd.py``).
"""

from __future__ import annotations

from typing import Any

from . import _messages as msg
from ._namespace import Array, Namespace, device

__all__: list[str] = []


def _info(xp: Namespace, x: Array) -> Any:
    info = xp.__array_namespace_info__()
    return info, device(x)


def floating(xp: Namespace, x: Array, name: str) -> Array:
    """``x`` as a real floating array: integers and booleans promoted, complex refused."""
    dtype = x.dtype
    if xp.isdtype(dtype, "real floating"):
        return x
    if xp.isdtype(dtype, "complex floating"):
        raise msg.complex_not_supported(name, x)
    if xp.isdtype(dtype, ("integral", "bool")):
        info, dev = _info(xp, x)
        return xp.astype(x, info.default_dtypes(device=dev)["real floating"])
    raise msg.not_numeric(name, x)


def work_dtype(xp: Namespace, x: Array) -> Any:
    """The dtype to compute in for a floating array ``x``: float64 where available."""
    float64 = getattr(xp, "float64", None)
    if float64 is None:
        return x.dtype
    info, dev = _info(xp, x)
    try:
        available = info.dtypes(device=dev, kind="real floating")
    except (TypeError, ValueError):  # pragma: no cover - namespaces without per-device info
        available = info.dtypes(kind="real floating")
    if float64 in available.values():
        return float64
    return x.dtype


def result_dtype(xp: Namespace, *arrays: Array) -> Any:
    """Common floating dtype of several floating arrays (``None`` entries skipped)."""
    dtypes = [a.dtype for a in arrays if a is not None]
    return xp.result_type(*dtypes)


def is_half(xp: Namespace, dtype: Any) -> bool:
    return dtype == getattr(xp, "float16", None) or "bfloat16" in str(dtype)
