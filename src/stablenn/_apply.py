"""The path every elementwise public function takes: validate, dispatch, compute, round."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _autodiff, _blocking, _dispatch
from ._namespace import Array, backend_name, quiet
from ._validation import unary

__all__: list[str] = []

Kernel = Callable[..., Array]


_ROUTED: dict[tuple[Any, ...], Callable[[Array], Array]] = {}


def _routed(name: str, argname: str, kernel: Kernel, extra: dict[str, Any]) -> Callable[[Array], Array]:
    """The public function as one callable per (function, options): JAX caches its compiled
    program by the callable, so a new closure per call would compile again every time."""
    key = (name, argname, kernel, tuple(sorted(extra.items())))
    fn = _ROUTED.get(key)
    if fn is None:

        def fn(a: Array) -> Array:
            return elementwise(name, a, argname, kernel, **extra)

        _ROUTED[key] = fn
    return fn


def elementwise(name: str, x: object, argname: str, kernel: Kernel, **extra: Any) -> Array:
    xp, xf, work, exact = unary(x, argname)
    if _autodiff.wanted(xf):  # PyTorch tensors that require grad, JAX arrays: our rule (or one jit)
        return _autodiff.call(name, _routed(name, argname, kernel, extra), xf)
    fast = _dispatch.lookup(name, backend_name(xf), xf.dtype, xf)
    with quiet(xp):
        if fast is not None:
            return fast(xf)

        def run(xb: Array) -> Array:
            xw = xb if exact else xp.astype(xb, work)
            y = kernel(xp, xw, exact, **extra)
            return y if exact else xp.astype(y, xf.dtype)

        if _blocking.wanted(xp, xf):
            return _blocking.flat(xp, run, [xf])
        return run(xf)
