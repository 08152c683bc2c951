"""Gradient rules: what each function keeps for backward, its VJP and its JVP.

A rule is backend-agnostic: it receives the array namespace ``xp`` and arrays of that
namespace, and computes with the kernels of ``_autodiff._kernels``.  The PyTorch glue
(``_torch.py``) calls ``forward`` then ``vjp``; the JAX glue (``_jax.py``) calls ``jvp``,
whose tangent map is linear in the tangents (multiplications by primal arrays and sums),
so JAX can transpose it for reverse mode.

``forward`` computes the primal through ``plain`` (the public function itself, with the
routing to these rules switched off), so the values are the same as without gradients.
What ``forward`` saves must be inputs, outputs, or constants whose derivative does not
matter (the rounding residuals): the backward pass of PyTorch is then differentiable again
with the right second derivative (``gradgradcheck``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .. import _messages as msg
from .._dtypes import work_dtype
from .._namespace import Array, Namespace
from .._validation import axes, keepdims_shape, move_last, restore_axis
from . import _kernels as dk

Saved = dict[str, Any]
RESIDUAL_MODES = ("full", "half", "none")


# ---------------------------------------------------------------- helpers


def work_of(xp: Namespace, like: Array) -> tuple[Any, bool]:
    """``(work dtype, exact)`` for results of ``like``'s dtype."""
    work = work_dtype(xp, like)
    return work, work == like.dtype


def is_float(xp: Namespace, a: Any) -> bool:
    return a is not None and hasattr(a, "dtype") and xp.isdtype(a.dtype, "real floating")


def residual_dtype(xp: Namespace, dtype: Any, mode: str) -> Any:
    """The dtype a residual is kept in: the output's, half its width, or None."""
    if mode == "none":
        return None
    if mode == "full" or dtype not in (xp.float32, xp.float64):
        return dtype
    if dtype == xp.float64:
        return xp.float32
    return getattr(xp, "bfloat16", dtype)


def unmove(xp: Namespace, a: Array, shape: tuple[int, ...], red: tuple[int, ...]) -> Array:
    """Inverse of ``move_last``: ``a`` of shape ``(*kept, n)`` back to ``shape``."""
    ndim = len(shape)
    kept = tuple(i for i in range(ndim) if i not in red)
    perm = kept + red
    a = xp.reshape(a, tuple(shape[i] for i in perm))
    if perm == tuple(range(ndim)):
        return a
    inverse = [0] * ndim
    for position, axis in enumerate(perm):
        inverse[axis] = position
    return xp.permute_dims(a, tuple(inverse))


def unbroadcast(xp: Namespace, a: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``a`` over the axes that broadcasting added to an array of ``shape``."""
    shape = tuple(shape)
    lead = a.ndim - len(shape)
    if lead > 0:
        a = xp.sum(a, axis=tuple(range(lead)))
    summed = tuple(i for i, s in enumerate(shape) if s == 1 and a.shape[i] != 1)
    if summed:
        a = xp.sum(a, axis=summed, keepdims=True)
    return a


def full_like_shape(xp: Namespace, a: Array, shape: tuple[int, ...], dtype: Any) -> Array:
    return xp.broadcast_to(xp.astype(a, dtype), shape)


def zeros_for(xp: Namespace, a: Array) -> Array:
    return xp.zeros_like(a)


class Rule:
    """Base class: ``arrays`` names the array arguments in the order the hook passes them."""

    name: str = ""
    arrays: tuple[str, ...] = ()
    non_differentiable: tuple[str, ...] = ()  # arguments whose gradient is refused
    multiple_outputs: bool = False

    def plain(self, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> Any:
        raise NotImplementedError

    def check(self, args: list[Any], requires: Callable[[Any], bool]) -> None:
        """Refuse gradients of arguments that have none (PyTorch's rule)."""
        for name in self.non_differentiable:
            value = args[self.arrays.index(name)]
            if value is not None and requires(value):
                raise msg.grad_not_differentiable(
                    f"`{self.name}`",
                    name,
                    value,
                    f"Pass `{name}.detach()` (PyTorch) or `jax.lax.stop_gradient({name})` (JAX).",
                )

    def forward(self, xp: Namespace, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> tuple[Any, Saved]:
        raise NotImplementedError

    def vjp(self, xp: Namespace, saved: Saved, grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
        raise NotImplementedError

    def jvp(
        self, xp: Namespace, out: Any, args: list[Any], tangents: list[Any], opts: dict[str, Any]
    ) -> tuple[Any, Any]:
        """``(out, tangent of out)``; ``out`` is the primal output, computed by the caller."""
        raise NotImplementedError


# ---------------------------------------------------------------- elementwise

Deriv = Callable[[Namespace, Array, bool], Array]


class Elementwise(Rule):
    """``y = f(x)`` elementwise; backward ``g f'(x)``.

    ``saves_output``: sigmoid and tanh keep their output ``y`` and a residual ``r`` (the
    digits of ``1 - |y|`` the rounding of ``y`` lost, computed from the input in the forward
    pass) instead of the input; the others keep the input.
    """

    arrays = ("x",)

    def __init__(
        self,
        name: str,
        deriv: Deriv,
        residual: Callable[..., Array] | None = None,
        from_saved: Callable[..., Array] | None = None,
    ) -> None:
        self.name = name
        self.deriv = deriv
        self.residual = residual
        self.from_saved = from_saved

    def plain(self, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> Any:
        return fn(args[0])

    def forward(self, xp: Namespace, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> tuple[Any, Saved]:
        x = args[0]
        y = fn(x)
        if self.residual is None:
            return y, {"x": x}
        mode = opts.get("residual", "full")
        rdtype = residual_dtype(xp, y.dtype, mode)
        if rdtype is None:
            return y, {"y": y, "r": None}
        work, exact = work_of(xp, y)
        r = self.residual(xp, xp.astype(x, work), xp.astype(y, work), exact)
        return y, {"y": y, "r": xp.astype(r, rdtype)}

    def local(self, xp: Namespace, saved: Saved) -> tuple[Array, Any]:
        if "x" in saved:
            x = saved["x"]
            work, exact = work_of(xp, x)
            return self.deriv(xp, xp.astype(x, work), exact), x.dtype
        y, r = saved["y"], saved["r"]
        work, exact = work_of(xp, y)
        rw = None if r is None else xp.astype(r, work)
        assert self.from_saved is not None
        return self.from_saved(xp, xp.astype(y, work), rw, exact), y.dtype

    def vjp(self, xp: Namespace, saved: Saved, grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
        d, dtype = self.local(xp, saved)
        return [xp.astype(xp.astype(grads[0], d.dtype) * d, dtype)]

    def jvp(
        self, xp: Namespace, out: Any, args: list[Any], tangents: list[Any], opts: dict[str, Any]
    ) -> tuple[Any, Any]:
        x, y = args[0], out
        if tangents[0] is None:
            return y, xp.zeros_like(y)
        work, exact = work_of(xp, y)
        d = self.deriv(xp, xp.astype(x, work), exact)
        return y, xp.astype(xp.astype(tangents[0], work) * d, y.dtype)


def _elementwise_rules() -> dict[str, Rule]:
    rules: dict[str, Rule] = {
        "sigmoid": Elementwise("sigmoid", dk.d_sigmoid, dk.residual_sigmoid, dk.sigmoid_from_saved),
        "tanh": Elementwise("tanh", dk.d_tanh, dk.residual_tanh, dk.tanh_from_saved),
        "log_sigmoid": Elementwise("log_sigmoid", dk.d_log_sigmoid),
        "softplus": Elementwise("softplus", dk.d_softplus),
        "logit": Elementwise("logit", dk.d_logit),
        "sigmoid_grad": Elementwise("sigmoid_grad", dk.d_sigmoid_grad),
        "tanh_grad": Elementwise("tanh_grad", dk.d_tanh_grad),
        "sigmoid_grad_from_output": Elementwise("sigmoid_grad_from_output", dk.d_sigmoid_grad_from_output),
        "tanh_grad_from_output": Elementwise("tanh_grad_from_output", dk.d_tanh_grad_from_output),
        # the identities' gradients are the exact derivatives of the functions they compute
        "sigmoid_via_tanh": Elementwise("sigmoid_via_tanh", dk.d_sigmoid),
        "tanh_via_sigmoid": Elementwise("tanh_via_sigmoid", dk.d_tanh),
    }
    return rules


# ---------------------------------------------------------------- logsumexp


class LogSumExp(Rule):
    """d/dx_i = ``b_i e^{x_i} / S`` and d/db_i = ``e^{x_i} / S`` (``S`` signed); the shift has none."""

    name = "logsumexp"
    arrays = ("x", "b", "shift")

    def plain(self, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> Any:
        x, b, shift = args
        return fn(x, b=b, shift=shift, axis=opts["axis"], keepdims=opts["keepdims"], return_sign=opts["return_sign"])

    def gradients(
        self, xp: Namespace, x: Array, b: Array | None, axis: Any, dtype: Any
    ) -> tuple[Array, Array | None, tuple[int, ...], Any, bool]:
        work = work_dtype(xp, xp.astype(x, dtype))
        exact = work == dtype
        shape = tuple(x.shape)
        red = axes(axis, x.ndim)
        xw = xp.astype(x, work)
        bw = None if b is None else xp.broadcast_to(xp.astype(b, work), shape)
        xl, _ = move_last(xp, xw, red)
        bl = None if bw is None else move_last(xp, bw, red)[0]
        if xl.shape[-1] == 0:
            p = xp.zeros_like(xl)
            e = p
        else:
            p_hi, p_lo, e = dk.weighted_softmax(xp, xl, bl, exact)
            p = p_hi + p_lo
        p = unmove(xp, p, shape, red)
        e_full = None if b is None else unmove(xp, e, shape, red)
        return p, e_full, red, work, exact

    def forward(self, xp: Namespace, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> tuple[Any, Saved]:
        out = self.plain(fn, args, opts)
        res = out[0] if opts["return_sign"] else out
        return out, {"x": args[0], "b": args[1], "shift": args[2], "dtype": res.dtype}

    def vjp(self, xp: Namespace, saved: Saved, grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
        x, b, shift = saved["x"], saved["b"], saved["shift"]
        p, e, red, work, _ = self.gradients(xp, x, b, opts["axis"], saved["dtype"])
        g = grads[0]
        shape = tuple(x.shape)
        g = xp.broadcast_to(xp.reshape(xp.astype(g, work), keepdims_shape(shape, red)), shape)
        out: list[Any] = [None, None, None]
        if needs[0]:
            out[0] = xp.astype(g * p, x.dtype)
        if b is not None and needs[1] and e is not None:
            out[1] = xp.astype(unbroadcast(xp, g * e, tuple(b.shape)), b.dtype)
        if needs[2] and hasattr(shift, "shape"):
            out[2] = xp.zeros_like(shift)  # the result does not depend on the shift
        return out

    def jvp(
        self, xp: Namespace, out: Any, args: list[Any], tangents: list[Any], opts: dict[str, Any]
    ) -> tuple[Any, Any]:
        res = out[0] if opts["return_sign"] else out
        x, b = args[0], args[1]
        tx, tb = tangents[0], tangents[1]
        if tx is None and tb is None:
            tan = xp.zeros_like(res)
        else:
            p, e, red, work, _ = self.gradients(xp, x, b, opts["axis"], res.dtype)
            terms = xp.zeros_like(p)
            if tx is not None:
                terms = terms + p * xp.astype(tx, work)
            if tb is not None and e is not None:
                terms = terms + e * xp.broadcast_to(xp.astype(tb, work), tuple(x.shape))
            tan = xp.sum(terms, axis=red, keepdims=opts["keepdims"]) if red else terms
            tan = xp.astype(xp.reshape(tan, tuple(res.shape)), res.dtype)
        if opts["return_sign"]:
            return out, (tan, xp.zeros_like(out[1]))
        return out, tan


# ---------------------------------------------------------------- softmax and log_softmax


class Normalise(Rule):
    """softmax and log_softmax along one axis, keeping the output and a residual.

    softmax: ``dx = y (g R - (u - y g))`` with ``u = sum_j y_j g_j`` and ``R_i = sum_{j != i}
    y_j``, the form of ``y (g - u)`` in which the complement ``1 - y_i`` is the sum of the
    other outputs: the diagonal of the Jacobian, ``y_i (1 - y_i)``, keeps its digits when
    ``y_i`` rounds to 1.  log_softmax: ``dx = g Q - p (G - g)`` with ``p = e^y (1 + q)``,
    ``1 - p`` from ``log_softmax_from_saved`` and ``G = sum_j g_j``.  The residual (``y``'s
    relative rounding error for softmax; for log_softmax the rounding error of ``y``, or in float64
    the relative correction ``q`` of ``e^y``) is kept at half the output's width by
    default: less memory than the input, and enough, since it only has to carry the few
    bits that ``exp`` amplifies.  float64 log_softmax keeps ``q`` in float64: where ``p``
    rounds to 1, ``q`` is all of ``1 - p``.
    """

    arrays = ("x", "shift")

    def __init__(self, name: str) -> None:
        self.name = name
        self.residual = dk.residual_softmax if name == "softmax" else dk.residual_log_softmax

    def plain(self, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> Any:
        return fn(args[0], axis=opts["axis"], shift=args[1])

    @staticmethod
    def _axis(ndim: int, axis: int) -> int:
        return axis % ndim if ndim else 0

    def forward(self, xp: Namespace, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> tuple[Any, Saved]:
        x, shift = args
        y = self.plain(fn, args, opts)
        work, exact = work_of(xp, y)
        # log_softmax in float64 keeps a float64 residual: near p = 1 it carries all of 1 - p
        mode = opts.get("residual", "full" if exact and self.name == "log_softmax" else "half")
        rdtype = residual_dtype(xp, y.dtype, mode)
        saved: Saved = {"y": y, "r": None, "shift": shift}
        if rdtype is None or y.ndim == 0 or 0 in tuple(y.shape):
            return y, saved
        ax = self._axis(y.ndim, opts["axis"])
        xl, _ = move_last(xp, xp.astype(x, work), (ax,))
        yl, _ = move_last(xp, xp.astype(y, work), (ax,))
        r = self.residual(xp, xl, yl, exact)
        saved["r"] = xp.astype(restore_axis(xp, r, ax, y.ndim), rdtype)
        return y, saved

    def vjp(self, xp: Namespace, saved: Saved, grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
        y, r, g = saved["y"], saved["r"], grads[0]
        out: list[Any] = [None, None]
        shift = saved["shift"]
        if needs[1] and hasattr(shift, "shape"):
            out[1] = xp.zeros_like(shift)
        if not needs[0]:
            return out
        if y.ndim == 0 or 0 in tuple(y.shape):
            if self.name == "softmax" or y.ndim != 0:
                out[0] = xp.zeros_like(g) * xp.where(xp.isnan(y), xp.nan, 1.0)
            else:  # log_softmax of one entry is 0 (or NaN): dx = g - 1 * g = 0
                out[0] = xp.zeros_like(g) * xp.where(xp.isnan(y), xp.nan, 1.0)
            return out
        ax = self._axis(y.ndim, opts["axis"])
        work, exact = work_of(xp, y)
        yl, _ = move_last(xp, xp.astype(y, work), (ax,))
        gl, _ = move_last(xp, xp.astype(g, work), (ax,))
        rl = None if r is None else move_last(xp, xp.astype(r, work), (ax,))[0]
        if self.name == "softmax":
            dx = _softmax_vjp_saved(xp, yl, rl, gl, exact)
        else:
            dx = _log_softmax_vjp_saved(xp, yl, rl, gl, exact)
        out[0] = xp.astype(restore_axis(xp, dx, ax, y.ndim), y.dtype)
        return out

    def jvp(
        self, xp: Namespace, out: Any, args: list[Any], tangents: list[Any], opts: dict[str, Any]
    ) -> tuple[Any, Any]:
        x, y = args[0], out
        t = tangents[0]
        if t is None or y.ndim == 0 or 0 in tuple(y.shape):
            return y, xp.zeros_like(y) * xp.where(xp.isnan(y), xp.nan, 1.0)
        ax = self._axis(y.ndim, opts["axis"])
        work, exact = work_of(xp, y)
        xl, _ = move_last(xp, xp.astype(x, work), (ax,))
        tl, _ = move_last(xp, xp.astype(t, work), (ax,))
        p_hi, p_lo = dk.softmax_dd(xp, xl, exact)
        p = p_hi + p_lo
        big_r = dk.complement(xp, p_hi, exact) if not exact else _complement_dd(xp, p_hi, p_lo)
        yl, _ = move_last(xp, y, (ax,))
        masked = yl == -xp.inf  # log_softmax: outputs at -inf pass no gradient (as on PyTorch)
        linear = opts.get("_linear")
        if linear is not None:  # JAX: a tangent map whose transpose is written out, not derived
            tan = linear(self.name, p, big_r, masked, tl)
        else:
            tan = normalise_jvp(xp, self.name, p, big_r, masked, tl)
        return y, xp.astype(restore_axis(xp, tan, ax, y.ndim), y.dtype)


def normalise_jvp(xp: Namespace, name: str, p: Array, big_r: Array, masked: Array, t: Array) -> Array:
    """Tangent of softmax / log_softmax over the last axis, ``R_i = sum_{j != i} p_j``.

    ``t_i - <p, t> = t_i R_i - (<p, t> - p_i t_i)``: no ``1 - p_i`` cancellation when ``p_i``
    rounds to 1.
    """
    u = xp.sum(p * t, axis=-1, keepdims=True)
    inner = t * big_r - (u - p * t)
    if name == "softmax":
        return p * inner
    return xp.where(masked, -u, inner)


def normalise_vjp(xp: Namespace, name: str, p: Array, big_r: Array, masked: Array, g: Array) -> Array:
    """The transpose of ``normalise_jvp``, in the same accurate form (softmax is symmetric)."""
    if name == "softmax":
        return normalise_jvp(xp, name, p, big_r, masked, g)
    total = xp.sum(g, axis=-1, keepdims=True)
    return xp.where(masked, 0.0, g * big_r - p * (total - g))


def normalise_jvp_dp(xp: Namespace, name: str, p: Array, d: Array, t: Array) -> Array:
    """Derivative of ``normalise_jvp`` w.r.t. ``p`` in direction ``d`` (for second order)."""
    dt = xp.sum(d * t, axis=-1, keepdims=True)
    if name == "softmax":
        return d * (t - xp.sum(p * t, axis=-1, keepdims=True)) - p * dt
    return -dt + xp.zeros_like(t)


def _complement_dd(xp: Namespace, p_hi: Array, p_lo: Array) -> Array:
    from .._kernels import _dd

    s_hi, s_lo = _dd.sum_last(xp, p_hi, p_lo)
    return (s_hi[..., None] - p_hi) + (s_lo[..., None] - p_lo)


def _softmax_vjp_saved(xp: Namespace, y: Array, r: Array | None, g: Array, exact: bool) -> Array:
    # dx = y (g - sum_j y_j g_j) written as y (g R - (u - y g)), R_i = sum_{j != i} y_j: the
    # 1 - y_i that cancels when y_i rounds to 1 is replaced by the sum of the other outputs.
    # r is the relative residual (p - y) / y (see residual_softmax): p = y + y r
    if exact:
        lo = xp.zeros_like(y) if r is None else y * r
        big_r = _complement_dd(xp, y, lo)
        u = xp.sum(y * g, axis=-1, keepdims=True) + xp.sum(lo * g, axis=-1, keepdims=True)
        inner = g * big_r - (u - (y * g + lo * g))
        return y * inner + lo * inner
    yt = y if r is None else y + y * r
    big_r = dk.complement(xp, yt, exact)
    u = xp.sum(yt * g, axis=-1, keepdims=True)
    return yt * (g * big_r - (u - yt * g))


def _log_softmax_vjp_saved(xp: Namespace, y: Array, q: Array | None, g: Array, exact: bool) -> Array:
    # dx = g - p sum_j g_j = g (1 - p) - p (G - g): 1 - p = -expm1(y) keeps its digits where
    # p rounds to 1, and p = e^y (1 + q) undoes the amplification of y's rounding by exp.
    p, big_q = dk.log_softmax_from_saved(xp, y, q, exact)
    g_hi, g_lo = dk.sum_dd(xp, g, True)  # G - g_i must not cancel: double-double in every dtype
    rest = (g_hi - g) + g_lo
    # an output at -inf (a -inf input, or a finite one beside +inf entries) is masked out:
    # no gradient flows through it, so an all -inf slice gets 0, not NaN
    return xp.where(y == -xp.inf, 0.0, g * big_q - p * rest)


# ---------------------------------------------------------------- losses


def _reduce_scale(xp: Namespace, g: Array, reduction: str, n: int, shape: tuple[int, ...], work: Any) -> Array:
    gw = xp.astype(g, work)
    if reduction == "none":
        return gw
    if reduction == "mean":
        gw = gw / float(n) if n else gw * math.nan
    return xp.broadcast_to(xp.reshape(gw, (1,) * len(shape)), shape)


def _reduce(xp: Namespace, a: Array, reduction: str, n: int) -> Array:
    if reduction == "none":
        return a
    total = xp.sum(xp.reshape(a, (-1,)))
    return total / float(n) if reduction == "mean" else total


class BinaryCrossEntropy(Rule):
    """Gradients w.r.t. logits and targets (PyTorch's), and also weight and pos_weight."""

    name = "binary_cross_entropy_with_logits"
    arrays = ("logits", "targets", "weight", "pos_weight")

    def plain(self, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> Any:
        x, y, w, pw = args
        return fn(x, y, weight=w, pos_weight=pw, reduction=opts["reduction"])

    def forward(self, xp: Namespace, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> tuple[Any, Saved]:
        out = self.plain(fn, args, opts)
        return out, {**dict(zip(self.arrays, args)), "dtype": out.dtype}

    def partials(
        self, xp: Namespace, args: list[Any], need: tuple[bool, ...], dtype: Any
    ) -> tuple[list[Any], Any, tuple[int, ...]]:
        x, y, w, pw = args
        work = work_dtype(xp, xp.astype(x, dtype))
        exact = work == dtype
        shape = tuple(x.shape)
        cast = lambda a: None if a is None else full_like_shape(xp, a, shape, work)  # noqa: E731
        d = dk.bce_partials(xp, cast(x), cast(y), cast(w), cast(pw), tuple(need), exact)  # type: ignore[arg-type]
        return d, work, shape

    def vjp(self, xp: Namespace, saved: Saved, grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
        args = [saved[k] for k in self.arrays]
        need = tuple(bool(n) and a is not None for n, a in zip(needs, args))
        d, work, shape = self.partials(xp, args, need, saved["dtype"])
        n = math.prod(shape)
        gs = _reduce_scale(xp, grads[0], opts["reduction"], n, shape, work)
        out: list[Any] = [None] * 4
        for i, a in enumerate(args):
            if need[i] and d[i] is not None:
                out[i] = xp.astype(unbroadcast(xp, gs * d[i], tuple(a.shape)), a.dtype)
        return out

    def jvp(
        self, xp: Namespace, out: Any, args: list[Any], tangents: list[Any], opts: dict[str, Any]
    ) -> tuple[Any, Any]:
        need = tuple(t is not None and a is not None for t, a in zip(tangents, args))
        if not any(need):
            return out, xp.zeros_like(out)
        d, work, shape = self.partials(xp, args, need, out.dtype)
        total = None
        for i, t in enumerate(tangents):
            if need[i] and d[i] is not None:
                term = d[i] * xp.broadcast_to(xp.astype(t, work), shape)
                total = term if total is None else total + term
        assert total is not None
        tan = _reduce(xp, total, opts["reduction"], math.prod(shape))
        return out, xp.astype(xp.reshape(tan, tuple(out.shape)), out.dtype)


class CrossEntropy(Rule):
    """Gradients w.r.t. logits and probability targets; class weights are not differentiable."""

    name = "cross_entropy_with_logits"
    arrays = ("logits", "targets", "weight")
    non_differentiable = ("weight",)

    def plain(self, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> Any:
        x, t, w = args
        return fn(
            x,
            t,
            axis=opts["axis"],
            weight=w,
            ignore_index=opts["ignore_index"],
            label_smoothing=opts["label_smoothing"],
            reduction=opts["reduction"],
        )

    def forward(self, xp: Namespace, fn: Callable[..., Any], args: list[Any], opts: dict[str, Any]) -> tuple[Any, Saved]:
        out = self.plain(fn, args, opts)
        return out, {**dict(zip(self.arrays, args)), "dtype": out.dtype}

    def partials(
        self, xp: Namespace, args: list[Any], opts: dict[str, Any], need_targets: bool, dtype: Any
    ) -> tuple[Array, Array | None, Array, Any, int, bool]:
        x, t, w = args
        probs = xp.isdtype(t.dtype, "real floating")
        work = work_dtype(xp, xp.astype(x, dtype))
        exact = work == dtype
        ax = opts["axis"] % x.ndim
        xl, _ = move_last(xp, xp.astype(x, work), (ax,))
        n_classes = xl.shape[-1]
        ww = None if w is None else xp.astype(w, work)
        eps = float(opts["label_smoothing"])
        if probs:
            pl, _ = move_last(xp, xp.astype(t, work), (ax,))
            dx, dy, w_t = dk.cross_entropy_partials(xp, xl, None, pl, ww, None, eps, need_targets, exact)
        else:
            ignore_index = opts["ignore_index"]
            ignore = None if ignore_index is None else t == ignore_index
            valid = (t >= 0) & (t < n_classes)
            safe = xp.where(valid, t, xp.zeros_like(t))
            dx, dy, w_t = dk.cross_entropy_partials(xp, xl, safe, None, ww, ignore, eps, False, exact)
            known = valid if ignore is None else valid | ignore
            dx = xp.where(known[..., None], dx, xp.nan)  # an index nobody checked: NaN, as the loss
        return dx, dy, w_t, work, ax, bool(probs)

    def _row_scale(self, xp: Namespace, g: Array, w_t: Array, probs: bool, opts: dict[str, Any], work: Any) -> Array:
        gw = xp.astype(g, work)
        red = opts["reduction"]
        if red == "none":
            return gw
        if red == "mean":
            den = float(math.prod(tuple(w_t.shape))) if probs else xp.sum(xp.reshape(w_t, (-1,)))
            gw = gw / den
        return xp.broadcast_to(xp.reshape(gw, (1,) * w_t.ndim), tuple(w_t.shape))

    def vjp(self, xp: Namespace, saved: Saved, grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
        args = [saved[k] for k in self.arrays]
        x, t = args[0], args[1]
        need_t = bool(needs[1]) and xp.isdtype(t.dtype, "real floating")
        dx, dy, w_t, work, ax, probs = self.partials(xp, args, opts, need_t, saved["dtype"])
        scale = self._row_scale(xp, grads[0], w_t, probs, opts, work)[..., None]
        out: list[Any] = [None, None, None]
        if needs[0]:
            out[0] = xp.astype(restore_axis(xp, scale * dx, ax, x.ndim), x.dtype)
        if need_t and dy is not None:
            out[1] = xp.astype(restore_axis(xp, scale * dy, ax, x.ndim), t.dtype)
        return out

    def jvp(
        self, xp: Namespace, out: Any, args: list[Any], tangents: list[Any], opts: dict[str, Any]
    ) -> tuple[Any, Any]:
        x, t = args[0], args[1]
        need_t = tangents[1] is not None and xp.isdtype(t.dtype, "real floating")
        if tangents[0] is None and not need_t:
            return out, xp.zeros_like(out)
        dx, dy, w_t, work, ax, probs = self.partials(xp, args, opts, need_t, out.dtype)
        rows = xp.zeros_like(w_t)
        if tangents[0] is not None:
            tl, _ = move_last(xp, xp.astype(tangents[0], work), (ax,))
            rows = rows + xp.sum(dx * tl, axis=-1)
        if need_t and dy is not None:
            ul, _ = move_last(xp, xp.astype(tangents[1], work), (ax,))
            rows = rows + xp.sum(dy * ul, axis=-1)
        red = opts["reduction"]
        if red == "none":
            tan = rows
        else:
            tan = xp.sum(xp.reshape(rows, (-1,)))
            if red == "mean":
                den = float(math.prod(tuple(w_t.shape))) if probs else xp.sum(xp.reshape(w_t, (-1,)))
                tan = tan / den
        return out, xp.astype(xp.reshape(tan, tuple(out.shape)), out.dtype)


RULES: dict[str, Rule] = {
    **_elementwise_rules(),
    "logsumexp": LogSumExp(),
    "softmax": Normalise("softmax"),
    "log_softmax": Normalise("log_softmax"),
    "binary_cross_entropy_with_logits": BinaryCrossEntropy(),
    "cross_entropy_with_logits": CrossEntropy(),
}
