"""Argument checks and shape plumbing shared by the public functions.

Every check raises through ``_messages``; nothing here computes a result.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from . import _messages as msg
from ._dtypes import floating, work_dtype
from ._namespace import Array, Namespace, can_read_values, namespace

__all__: list[str] = []

REDUCTIONS = ("none", "mean", "sum")


def unary(x: object, name: str) -> tuple[Namespace, Array, Any, bool]:
    """Resolve the namespace of one array argument: ``(xp, x_float, work_dtype, exact)``."""
    xp = namespace(**{name: x})
    xf = floating(xp, x, name)
    work = work_dtype(xp, xf)
    return xp, xf, work, work == xf.dtype


def flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise msg.flag_type(name, value)
    return value


def axes(axis: object, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """Normalise ``axis`` (None, int or tuple of ints) to a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for item in items:
        if isinstance(item, bool):
            raise msg.axis_type(name, axis)
        try:
            i = operator.index(item)  # type: ignore[arg-type]
        except TypeError:
            raise msg.axis_type(name, axis) from None
        if not -ndim <= i < ndim:
            raise msg.axis_out_of_range(name, i, ndim)
        out.append(i % ndim)
    if len(set(out)) != len(out):
        raise msg.axis_repeated(name, axis, ndim)
    return tuple(sorted(out))


def single_axis(axis: object, ndim: int, name: str = "axis") -> int:
    if isinstance(axis, bool) or axis is None or isinstance(axis, tuple):
        raise msg.axis_single(name, axis)
    try:
        i = operator.index(axis)  # type: ignore[arg-type]
    except TypeError:
        raise msg.axis_single(name, axis) from None
    if not -ndim <= i < ndim:
        raise msg.axis_out_of_range(name, i, max(ndim, 0))
    return i % ndim


def reduction(value: object) -> str:
    if not isinstance(value, str) or value not in REDUCTIONS:
        raise msg.reduction_value(value)
    return value


def broadcast_to(xp: Namespace, a: Array, shape: tuple[int, ...], name: str, target_name: str) -> Array:
    """``a`` broadcast to ``shape`` (a read-only view where the backend has views)."""
    try:
        out_shape = _broadcast_shapes(tuple(a.shape), shape)
    except ValueError:
        out_shape = None
    if out_shape != tuple(shape):
        raise msg.not_broadcastable(name, tuple(a.shape), target_name, tuple(shape))
    return xp.broadcast_to(a, shape)


def _broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + a
    b = (1,) * (n - len(b)) + b
    out = []
    for i, j in zip(a, b):
        if i == j or j == 1:
            out.append(i)
        elif i == 1:
            out.append(j)
        else:
            raise ValueError
    return tuple(out)


def move_last(xp: Namespace, x: Array, red: tuple[int, ...]) -> tuple[Array, tuple[int, ...]]:
    """Move the axes ``red`` last and merge them: ``(array of shape (*kept, n), kept shape)``."""
    ndim = x.ndim
    kept = tuple(i for i in range(ndim) if i not in red)
    kept_shape = tuple(x.shape[i] for i in kept)
    if red != tuple(range(ndim - len(red), ndim)):
        x = xp.permute_dims(x, kept + red)
    n = math.prod(x.shape[len(kept):]) if red else 1
    if len(red) != 1:
        x = xp.reshape(x, kept_shape + (n,))
    return x, kept_shape


def restore_axis(xp: Namespace, y: Array, axis: int, ndim: int) -> Array:
    """Inverse of ``move_last`` for a single axis: move the last axis back to ``axis``."""
    if axis == ndim - 1:
        return y
    order = list(range(ndim - 1))
    order.insert(axis, ndim - 1)
    return xp.permute_dims(y, tuple(order))


def keepdims_shape(shape: tuple[int, ...], red: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in red else s for i, s in enumerate(shape))


def finite_scalar_check(xp: Namespace, a: Array) -> None:
    """Refuse a non-finite ``shift`` where its values can be read cheaply."""
    if can_read_values(a) and not bool(xp.all(xp.isfinite(a))):
        raise msg.shift_not_finite(a)


def value_range(xp: Namespace, a: Array) -> tuple[Any, Any] | None:
    """(min, max) of ``a`` where that is cheap and safe to read, else None."""
    if not can_read_values(a) or a.size == 0:
        return None
    return xp.min(a), xp.max(a)


def all_finite(xp: Namespace, x: Array) -> bool:
    """True only where values are cheap to read and every one is finite (a fast-path hint)."""
    return can_read_values(x) and bool(xp.all(xp.isfinite(x)))
