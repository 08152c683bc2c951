"""The one table: function x backend x dtype -> implementation.

The public functions ask ``lookup`` for a fast path before falling back to the pure
array-API kernels of ``_kernels``.  An entry goes in only once it meets the same error
budget as the kernel it replaces (``stablenn.audit`` measures every entry).  Loaders are
called lazily, so registering an entry imports nothing.

Call conventions of the entries, by function:

- elementwise (``sigmoid``, ``tanh``, ...): ``impl(x) -> y``, ``x`` floating in its own dtype.
- ``logsumexp``: ``impl(x, b, return_sign) -> (res, sign)`` over the last axis, ``b`` None or
  broadcast to ``x``; only used without ``shift``.
- ``softmax``, ``log_softmax``: ``impl(x) -> y`` over the last axis; only without ``shift``.
- ``binary_cross_entropy_with_logits``: ``impl(x, y, weight, pos_weight, reduction)``.
- ``cross_entropy_with_logits``: ``impl(x, targets, weight, ignore_index, smoothing, reduction)``
  with classes last and class-index targets.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__: list[str] = []


@dataclass(frozen=True)
class Entry:
    dtypes: frozenset[str]
    load: Callable[[], Callable[..., Any]]
    applies: Callable[..., bool] | None = None


_TABLE: dict[tuple[str, str], list[Entry]] = {}
_DISABLED = [os.environ.get("STABLENN_PLAIN", "") not in ("", "0")]


@contextlib.contextmanager
def plain_only() -> Iterator[None]:
    """Within this block every call takes the pure array-API kernels (benchmarks, tests).

    ``STABLENN_PLAIN=1`` in the environment does the same for a whole process.
    """
    before = _DISABLED[0]
    _DISABLED[0] = True
    try:
        yield
    finally:
        _DISABLED[0] = before


def register(
    function: str,
    backend: str,
    dtypes: tuple[str, ...],
    load: Callable[[], Callable[..., Any]],
    applies: Callable[..., bool] | None = None,
) -> None:
    """Add a fast path; ``applies(*args)`` may refuse a call (shape, contiguity, size)."""
    _TABLE.setdefault((function, backend), []).append(Entry(frozenset(dtypes), load, applies))


def lookup(function: str, backend: str, dtype: Any, *args: Any) -> Callable[..., Any] | None:
    if _DISABLED[0]:
        return None
    name = _dtype_name(dtype)
    for entry in _TABLE.get((function, backend), ()):
        if name in entry.dtypes and (entry.applies is None or entry.applies(*args)):
            return entry.load()
    return None


def entries() -> dict[tuple[str, str], list[Entry]]:
    """The table, for the audit and the docs."""
    return {key: list(value) for key, value in _TABLE.items()}


def _dtype_name(dtype: Any) -> str:
    text = str(dtype)
    return text.rsplit(".", 1)[-1]


def _native(name: str) -> Callable[[], Callable[..., Any]]:
    def load() -> Callable[..., Any]:
        import array_api_compat

        def native(x: Any) -> Any:
            return getattr(array_api_compat.array_namespace(x), name)(x)

        return native

    return load


# Native tanh where it meets the 1-ULP budget in float64 (measured by the audit; JAX's is
# 4 to 6 ULP off and takes our kernel).  Narrower dtypes go through the float64 kernel path.
for _backend in ("numpy", "torch", "cupy", "dask", "array_api_strict"):
    register("tanh", _backend, ("float64",), _native("tanh"))


def _register_fast_paths() -> None:
    from ._fast import register_all

    register_all()


_register_fast_paths()
