"""Gradients of one function by stablenn and by its peers, on NumPy data: for the audit.

``gradient_impls(name)`` returns callables that take NumPy arrays (float32 or float64; the
dtype of the first argument is the dtype computed in) and return the gradient as a NumPy
array of that dtype.  The calling convention matches the mpmath oracle of
``stablenn.audit._oracle``:

========================================  ===============================================
function                                  callable and what it returns
========================================  ===============================================
elementwise (``sigmoid``, ``tanh``, ...)   ``f(x)``: ``d/dx f(x)`` elementwise (oracle ``derivative``)
``logsumexp``                             ``f(x, b=None)``: ``d/dx log|sum b e^x|`` over all of ``x``
                                          (oracle ``logsumexp_grad``)
``softmax``, ``log_softmax``              ``f(x, cotangent)``: the VJP over the last axis
                                          (oracle ``softmax_vjp``, ``log_softmax_vjp``)
``binary_cross_entropy_with_logits``      ``f(logits, targets, weight=None, pos_weight=None)``:
                                          d(per-element loss)/d(logit) (oracle ``bce_grad``)
``cross_entropy_with_logits``             ``f(logits, target, weight=None, label_smoothing=0.0)``:
                                          d(row loss)/d(logits) for one row, ``target`` a class
                                          index or a probability vector (oracle ``cross_entropy_grad``)
========================================  ===============================================

Keys: ``"stablenn-torch"`` and ``"stablenn-jax"`` (stablenn's rules through
``torch.autograd`` and ``jax.grad``), ``"torch"`` and ``"jax"`` (the peers' own functions and
autograd).  Where a peer has no such function, the composite formula its users write is
differentiated (``sigma(x) (1 - sigma(x))`` for ``sigmoid_grad``, say).  JAX needs
``jax_enable_x64`` for float64 (a TypeError says so otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _messages as msg

ELEMENTWISE = (
    "sigmoid",
    "log_sigmoid",
    "softplus",
    "logit",
    "tanh",
    "sigmoid_grad",
    "tanh_grad",
    "sigmoid_grad_from_output",
    "tanh_grad_from_output",
    "sigmoid_via_tanh",
    "tanh_via_sigmoid",
)
FUNCTIONS = (
    *ELEMENTWISE,
    "logsumexp",
    "softmax",
    "log_softmax",
    "binary_cross_entropy_with_logits",
    "cross_entropy_with_logits",
)


# ---------------------------------------------------------------- frameworks


def _torch_grad(fn: Callable[..., Any], arrays: list[Any], wrt: int = 0) -> np.ndarray:
    import torch

    ts = [None if a is None else torch.from_numpy(np.array(a, copy=True)) for a in arrays]
    ts[wrt] = ts[wrt].requires_grad_()  # type: ignore[union-attr]
    out = fn(*ts)
    (g,) = torch.autograd.grad(out, ts[wrt], grad_outputs=torch.ones_like(out))
    return g.detach().numpy()


class _JaxGrad:
    """``d/d arrays[wrt] sum(fn(*arrays))`` under ``jax.jit`` (compiled once per shape)."""

    def __init__(self, fn: Callable[..., Any], wrt: int = 0, pad: tuple[float | None, ...] | None = None) -> None:
        import jax
        import jax.numpy as jnp

        self.wrt = wrt
        # pad: per argument, the neutral value to pad the last axis with up to a power of
        # two (fewer shapes, fewer compilations), or None to leave that argument alone
        self.pad = pad
        self.grad = jax.jit(jax.grad(lambda *a: jnp.sum(fn(*a)), argnums=wrt))

    def __call__(self, arrays: list[Any]) -> np.ndarray:
        import jax
        import jax.numpy as jnp

        dtype = np.asarray(arrays[self.wrt]).dtype
        if dtype == np.float64 and not jax.config.jax_enable_x64:
            raise msg.grad_jax_x64(dtype)
        n = np.asarray(arrays[self.wrt]).shape[-1] if np.ndim(arrays[self.wrt]) else 0
        if self.pad is not None and n:
            size = 1 << (n - 1).bit_length()
            arrays = [
                a if a is None or v is None or np.ndim(a) == 0
                else np.concatenate([np.asarray(a), np.full(np.shape(a)[:-1] + (size - n,), v, dtype=np.asarray(a).dtype)], axis=-1)
                for a, v in zip(arrays, self.pad)
            ]
        out = np.asarray(self.grad(*(None if a is None else jnp.asarray(a) for a in arrays)))
        return out[..., :n] if self.pad is not None and n else out


# ---------------------------------------------------------------- stablenn and peers, by kind

_NEG_INF = -float("inf")


class _Grader:
    """One framework's gradient of ``fn`` w.r.t. its first argument (built once)."""

    def __init__(self, framework: str, fn: Callable[..., Any], pad: tuple[float | None, ...] | None = None) -> None:
        self.framework = framework
        self.fn = fn
        self.jax = _JaxGrad(fn, 0, pad) if framework == "jax" else None

    def __call__(self, arrays: list[Any]) -> np.ndarray:
        if self.jax is not None:
            return self.jax(arrays)
        return _torch_grad(self.fn, arrays)


def _elementwise_impl(framework: str, fn: Callable[[Any], Any]) -> Callable[[np.ndarray], np.ndarray]:
    g = _Grader(framework, fn)
    return lambda x: g([x])


def _logsumexp_impl(framework: str, plain: Callable[[Any], Any], weighted: Callable[[Any, Any], Any]) -> Callable[..., np.ndarray]:
    g_plain = _Grader(framework, plain, pad=(_NEG_INF,))
    g_weighted = _Grader(framework, weighted, pad=(_NEG_INF, 0.0))

    def lse(x: Any, b: Any = None) -> np.ndarray:
        x = np.asarray(x)
        if b is None:
            return g_plain([x])
        return g_weighted([x, np.asarray(b, dtype=x.dtype)])

    return lse


def _vjp_impl(framework: str, fn: Callable[[Any], Any]) -> Callable[..., np.ndarray]:
    g = _Grader(framework, lambda a, c: fn(a) * c, pad=(_NEG_INF, 0.0))

    def vjp(x: Any, cotangent: Any) -> np.ndarray:
        x = np.asarray(x)
        return g([x, np.asarray(cotangent, dtype=x.dtype)])

    return vjp


def _bce_impl(framework: str, fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    g = _Grader(framework, fn)

    def bce(logits: Any, targets: Any, weight: Any = None, pos_weight: Any = None) -> np.ndarray:
        x = np.asarray(logits)
        shape = x.shape
        rest = [None if a is None else np.broadcast_to(np.asarray(a, dtype=x.dtype), shape).copy() for a in (targets, weight, pos_weight)]
        return g([x, *rest])

    return bce


def _ce_impl(framework: str, fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """``fn(logits (1, C), q (1, C), w (C,))``: the row loss with probability targets ``q``."""
    g = _Grader(framework, fn, pad=(_NEG_INF, 0.0, 0.0))

    def ce(logits: Any, target: Any, weight: Any = None, label_smoothing: float = 0.0) -> np.ndarray:
        x = np.asarray(logits).reshape(1, -1)
        n = x.shape[-1]
        t = np.asarray(target)
        q = np.eye(n, dtype=x.dtype)[int(t)] if np.issubdtype(t.dtype, np.integer) else t.astype(x.dtype)
        q = ((1 - label_smoothing) * q + label_smoothing / n).astype(x.dtype).reshape(1, -1)
        w = np.ones(n, dtype=x.dtype) if weight is None else np.asarray(weight, dtype=x.dtype)
        return g([x, q, w])[0]

    return ce


def _stablenn(name: str, framework: str) -> Callable[..., np.ndarray]:
    import stablenn

    if name in ELEMENTWISE:
        return _elementwise_impl(framework, getattr(stablenn, name))
    if name == "logsumexp":
        return _logsumexp_impl(
            framework,
            lambda a: stablenn.logsumexp(a, axis=-1),
            lambda a, w: stablenn.logsumexp(a, b=w, axis=-1, return_sign=True)[0],
        )
    if name in ("softmax", "log_softmax"):
        return _vjp_impl(framework, getattr(stablenn, name))
    if name == "binary_cross_entropy_with_logits":
        return _bce_impl(
            framework,
            lambda x, y, w, pw: stablenn.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction="none"),
        )

    return _ce_index_impl(framework)


def _ce_index_impl(framework: str) -> Callable[..., np.ndarray]:
    """stablenn's cross-entropy gradient through its class-index or probability path."""
    import stablenn

    def by_index(x: Any, t: Any, w: Any, eps: float) -> Any:
        return stablenn.cross_entropy_with_logits(x, t, weight=w, label_smoothing=eps, reduction="sum")

    cache: dict[float, _Grader] = {}

    def ce(logits: Any, target: Any, weight: Any = None, label_smoothing: float = 0.0) -> np.ndarray:
        x = np.asarray(logits).reshape(1, -1)
        n = x.shape[-1]
        t = np.asarray(target)
        w = np.ones(n, dtype=x.dtype) if weight is None else np.asarray(weight, dtype=x.dtype)
        eps = float(label_smoothing)
        if eps not in cache:
            pad = (_NEG_INF, None, 0.0)
            cache[eps] = _Grader(framework, lambda a, tt, ww: by_index(a, tt, ww, eps), pad=pad)
        if np.issubdtype(t.dtype, np.integer):
            tt = t.astype(np.int64).reshape(1)
        else:
            tt = t.astype(x.dtype).reshape(1, -1)
            if framework == "jax":  # pad the probabilities as the logits
                size = 1 << (n - 1).bit_length()
                tt = np.concatenate([tt, np.zeros((1, size - n), dtype=x.dtype)], axis=-1)
        return cache[eps]([x, tt, w])[0]

    return ce


def _torch_peer(name: str) -> Callable[..., np.ndarray]:
    import torch
    import torch.nn.functional as F

    unary: dict[str, Callable[[Any], Any]] = {
        "sigmoid": torch.sigmoid,
        "log_sigmoid": F.logsigmoid,
        "softplus": F.softplus,
        "logit": torch.logit,
        "tanh": torch.tanh,
        "sigmoid_grad": lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x)),
        "tanh_grad": lambda x: 1 - torch.tanh(x) ** 2,
        "sigmoid_grad_from_output": lambda y: y * (1 - y),
        "tanh_grad_from_output": lambda y: (1 - y) * (1 + y),
        "sigmoid_via_tanh": lambda x: (1 + torch.tanh(x / 2)) / 2,
        "tanh_via_sigmoid": lambda x: 2 * torch.sigmoid(2 * x) - 1,
    }
    if name in unary:
        return _elementwise_impl("torch", unary[name])
    if name == "logsumexp":

        def weighted(a: Any, w: Any) -> Any:
            # torch.logsumexp has no weights: the composite its users write
            m = torch.max(a, dim=-1, keepdim=True).values
            return m[..., 0] + torch.log(torch.abs(torch.sum(w * torch.exp(a - m), dim=-1)))

        return _logsumexp_impl("torch", lambda a: torch.logsumexp(a, -1), weighted)
    if name in ("softmax", "log_softmax"):
        f = torch.softmax if name == "softmax" else torch.log_softmax
        return _vjp_impl("torch", lambda a: f(a, -1))
    if name == "binary_cross_entropy_with_logits":
        return _bce_impl(
            "torch", lambda x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction="none")
        )

    def ce(logits: Any, target: Any, weight: Any = None, label_smoothing: float = 0.0) -> np.ndarray:
        x = np.asarray(logits).reshape(1, -1)
        t = np.asarray(target)
        tt = t.astype(np.int64).reshape(1) if np.issubdtype(t.dtype, np.integer) else t.astype(x.dtype).reshape(1, -1)
        w = None if weight is None else np.asarray(weight, dtype=x.dtype)
        return _torch_grad(
            lambda a, b, c: F.cross_entropy(a, b, weight=c, label_smoothing=label_smoothing, reduction="sum"), [x, tt, w]
        )[0]

    return ce


def _jax_peer(name: str) -> Callable[..., np.ndarray]:
    import jax
    import jax.numpy as jnp
    import jax.scipy.special as jss

    unary: dict[str, Callable[[Any], Any]] = {
        "sigmoid": jax.nn.sigmoid,
        "log_sigmoid": jax.nn.log_sigmoid,
        "softplus": jax.nn.softplus,
        "logit": jss.logit,
        "tanh": jnp.tanh,
        "sigmoid_grad": lambda x: jax.nn.sigmoid(x) * (1 - jax.nn.sigmoid(x)),
        "tanh_grad": lambda x: 1 - jnp.tanh(x) ** 2,
        "sigmoid_grad_from_output": lambda y: y * (1 - y),
        "tanh_grad_from_output": lambda y: (1 - y) * (1 + y),
        "sigmoid_via_tanh": lambda x: (1 + jnp.tanh(x / 2)) / 2,
        "tanh_via_sigmoid": lambda x: 2 * jax.nn.sigmoid(2 * x) - 1,
    }
    if name in unary:
        return _elementwise_impl("jax", unary[name])
    if name == "logsumexp":
        return _logsumexp_impl(
            "jax", lambda a: jss.logsumexp(a, axis=-1), lambda a, w: jss.logsumexp(a, b=w, axis=-1, return_sign=True)[0]
        )
    if name in ("softmax", "log_softmax"):
        return _vjp_impl("jax", jax.nn.softmax if name == "softmax" else jax.nn.log_softmax)
    if name == "binary_cross_entropy_with_logits":

        def bce(x: Any, y: Any, w: Any, pw: Any) -> Any:
            # Optax's sigmoid_binary_cross_entropy formula, with PyTorch's weights
            pw = 1.0 if pw is None else pw
            loss = -(pw * y * jax.nn.log_sigmoid(x) + (1 - y) * jax.nn.log_sigmoid(-x))
            return loss if w is None else w * loss

        return _bce_impl("jax", bce)
    # Optax's softmax_cross_entropy formula, with PyTorch's class weights and smoothing
    return _ce_impl("jax", lambda x, q, w: -jnp.sum(w * q * jax.nn.log_softmax(x, axis=-1)))


def gradient_impls(function_name: str) -> dict[str, Callable[..., np.ndarray]]:
    """Gradient callables of `function_name`: stablenn (through PyTorch and JAX) and peers.

    Parameters
    ----------
    function_name : str
        One of ``FUNCTIONS``.

    Returns
    -------
    dict
        ``{"stablenn-torch": f, "stablenn-jax": f, "torch": f, "jax": f}``; see the module
        docstring for each callable's arguments.

    Raises
    ------
    ValueError
        If `function_name` is not a differentiable stablenn function.

    Examples
    --------
    >>> import numpy as np
    >>> impls = gradient_impls("sigmoid")
    >>> x = np.array([0.0, 40.0])
    >>> impls["stablenn-torch"](x)  # exact in the tail
    array([2.50000000e-01, 4.24835426e-18])
    >>> impls["torch"](x)  # autograd from the output: every digit lost at 40
    array([0.25, 0.  ])
    """
    if function_name not in FUNCTIONS:
        raise msg.grad_unknown_function(function_name, FUNCTIONS)
    return {
        "stablenn-torch": _stablenn(function_name, "torch"),
        "stablenn-jax": _stablenn(function_name, "jax"),
        "torch": _torch_peer(function_name),
        "jax": _jax_peer(function_name),
    }
