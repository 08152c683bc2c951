"""The implementations an audit compares: stablenn, the naive textbook formula, the peers.

Each implementation of a function is an `Impl`: a callable with stablenn's signature for
that function, the array library it runs on, the dtypes it takes, and a label naming
what is called (``scipy.special.expit``).  The audit converts the same sampled NumPy
inputs to each library exactly, calls, and converts the results back exactly.

* ``stablenn``: the public function (on NumPy; bfloat16, which NumPy lacks, on PyTorch).
* ``naive``: the textbook formula evaluated in the dtype, rounding after every operation
  as a program in that dtype does: ``1/(1 + exp(-x))``, ``log(sum(exp(v)))``,
  ``-(y log s + (1 - y) log(1 - s))``...  The elementwise ones are formulas of
  `stablenn.audit._expr` (so the interval finder can name the operation that fails).
* ``numpy``, ``scipy``, ``torch``, ``jax`` (64-bit mode on) and ``tensorflow``: the
  library's own function, where it has one, when the library is installed.

Nothing here imports a peer library until its implementation is called.

>>> [i.name for i in implementations("softplus", "float64", ["stablenn", "naive", "numpy"])]
['stablenn', 'naive', 'numpy']
>>> print(NAIVE_FORMULAS["sigmoid"])
1/(1 + exp(-x))
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stablenn import _messages

__all__ = [
    "ALL_IMPLS",
    "GRAD_FUNCTIONS",
    "NAIVE_FORMULAS",
    "PEERS",
    "Impl",
    "Unsupported",
    "available",
    "grad_implementations",
    "implementations",
    "installed",
]

#: Peer libraries, in the order tables list them.
PEERS: tuple[str, ...] = ("numpy", "scipy", "torch", "jax", "tensorflow")
ALL_IMPLS: tuple[str, ...] = ("stablenn", "naive", *PEERS)

_MODULE = {"numpy": "numpy", "scipy": "scipy", "torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}

#: The naive formula of each elementwise function, as the audit's formula language writes it.
NAIVE_FORMULAS: dict[str, str] = {
    "sigmoid": "1/(1 + exp(-x))",
    "log_sigmoid": "log(1/(1 + exp(-x)))",
    "softplus": "log(1 + exp(x))",
    "logit": "log(x/(1 - x))",
    "tanh": "(exp(x) - exp(-x))/(exp(x) + exp(-x))",
    "sigmoid_grad": "1/(1 + exp(-x))*(1 - 1/(1 + exp(-x)))",
    "tanh_grad": "1 - tanh(x)**2",
    "logsumexp": "log(sum(exp(v)))",
    "softmax": "exp(v)/sum(exp(v))",
    "log_softmax": "log(exp(v)/sum(exp(v)))",
    "binary_cross_entropy_with_logits": "-w*(q*y*log(1/(1 + exp(-x))) + (1 - y)*log(1 - 1/(1 + exp(-x))))",
}
"""The textbook formulas.  ``sigmoid_grad`` and ``tanh_grad`` are the derivatives written
from the output (what backprop computes), ``logit`` is ``log(p/(1 - p))`` with ``x`` for
``p``.  The ``_from_output`` and ``_via_`` functions are formulas already: no naive twin."""

#: Functions whose derivative `--grad` audits (elementwise, with a derivative in the oracle).
GRAD_FUNCTIONS: tuple[str, ...] = (
    "sigmoid",
    "log_sigmoid",
    "softplus",
    "logit",
    "tanh",
    "sigmoid_grad",
    "tanh_grad",
    "sigmoid_via_tanh",
    "tanh_via_sigmoid",
)

_GRAD_NAIVE: dict[str, str] = {
    # what a textbook (and autograd through the output) writes for the derivative
    "sigmoid": "1/(1 + exp(-x))*(1 - 1/(1 + exp(-x)))",
    "log_sigmoid": "1 - 1/(1 + exp(-x))",
    "softplus": "1/(1 + exp(-x))",
    "logit": "1/(x*(1 - x))",
    "tanh": "1 - tanh(x)**2",
}


class Unsupported(Exception):
    """Raised by an implementation for an input it has no way to take (weights ``b``...)."""


@dataclass
class Impl:
    """One implementation of one function.

    Attributes
    ----------
    name : str
        ``stablenn``, ``naive`` or a peer library (`ALL_IMPLS`).
    label : str
        What is called: ``scipy.special.expit``, ``log(1 + exp(x))``.
    backend : str
        The array library the inputs are converted to: ``numpy``, ``torch``, ``jax`` or
        ``tensorflow``.
    fn : callable
        Takes that library's arrays, with stablenn's signature for the function.
    dtypes : tuple of str
        The formats it takes.
    formula : str, optional
        The naive formula (the interval finder traces its operations).
    """

    name: str
    label: str
    backend: str
    fn: Callable[..., Any]
    dtypes: tuple[str, ...]
    formula: str | None = None
    notes: list[str] = field(default_factory=list)
    pad_vectors: bool = False
    """Pad 1-D inputs with -inf (weights with 0) to the next power of two before the call
    and cut vector results back: JAX compiles one program per shape (about 0.2 s of CPU
    each), and the samplers' vectors have hundreds of lengths.  A -inf entry contributes
    exactly 0 to the sum of exponentials (and a 0 weight 0 to the weighted sum), so the
    result is the same function of the same terms."""

    # -------------------------------------------------------------- conversions

    def array(self, values: np.ndarray, dtype: str) -> Any:
        """Sampled values (the format's NumPy storage dtype) as this library's array."""
        if self.backend == "tensorflow":
            import tensorflow as tf

            from ._ulp import get_format

            t = tf.constant(np.ascontiguousarray(values).astype(get_format(dtype).storage))
            return tf.cast(t, getattr(tf, dtype))
        if self.backend == "numpy":
            from ._ulp import get_format

            # NumPy has no bfloat16: NumPy-side implementations (the naive formulas) take
            # bfloat16 values in their float32 storage and round every operation themselves
            return np.ascontiguousarray(values).astype(get_format(dtype).storage)
        return _backend(self.backend).array(values, dtype)

    def integers(self, values: np.ndarray) -> Any:
        """Class indices as this library's int64 array."""
        if self.backend == "tensorflow":
            import tensorflow as tf

            return tf.constant(np.ascontiguousarray(values, dtype=np.int64))
        return _backend(self.backend).integers(values)

    def numpy(self, value: Any, dtype: str) -> np.ndarray:
        """A result as NumPy values of `dtype` (storage dtype), exactly."""
        if self.backend == "tensorflow":
            import tensorflow as tf

            from ._ulp import to_storage

            if dtype == "bfloat16":
                value = tf.cast(value, tf.float32)
            return to_storage(np.asarray(value.numpy()), dtype)
        return _backend(self.backend).numpy(value, dtype)


_BACKENDS: dict[str, Any] = {}


def _backend(name: str) -> Any:
    if name not in _BACKENDS:
        from ._measure import _Backend

        _BACKENDS[name] = _Backend(name)
    return _BACKENDS[name]


def installed(library: str) -> bool:
    """Whether a peer library can be imported (without importing it).

    >>> installed("numpy")
    True
    """
    return importlib.util.find_spec(_MODULE[library]) is not None


# ---------------------------------------------------------------- stablenn


def _stablenn(function: str, dtype: str) -> Impl:
    import stablenn

    backend = "torch" if dtype == "bfloat16" else "numpy"
    return Impl("stablenn", f"stablenn.{function}", backend, getattr(stablenn, function), ("float16", "bfloat16", "float32", "float64"))


# ---------------------------------------------------------------- naive


def _naive_formula_fn(text: str, variable: str = "x") -> Callable[..., Any]:
    from ._expr import parse

    expr = parse(text)

    def call(x: np.ndarray, dtype: str) -> np.ndarray:
        from ._expr import evaluate_numpy

        return evaluate_numpy(expr, {variable: x}, dtype)

    return call


def _naive(function: str, dtype: str) -> Impl | None:
    from ._expr import evaluate_numpy, parse

    dtypes = ("float16", "bfloat16", "float32", "float64")
    if function == "cross_entropy_with_logits":
        return Impl(
            "naive",
            "-sum(w*q*log(exp(x)/sum(exp(x)))) per row",
            "numpy",
            lambda x, t, **kw: _naive_ce(dtype, x, t, **kw),
            dtypes,
        )
    formula = NAIVE_FORMULAS.get(function)
    if formula is None:
        return None
    expr = parse(formula)
    if function in ("sigmoid", "log_sigmoid", "softplus", "logit", "tanh", "sigmoid_grad", "tanh_grad"):

        def unary(x: np.ndarray) -> np.ndarray:
            return evaluate_numpy(expr, {"x": x}, dtype)

        return Impl("naive", formula, "numpy", unary, dtypes, formula=formula)
    if function in ("logsumexp", "softmax", "log_softmax"):
        weighted = parse("log(abs(sum(b*exp(v))))")
        total = parse("sum(b*exp(v))")

        def reduce(x: np.ndarray, *, b: np.ndarray | None = None, return_sign: bool = False) -> Any:
            if b is None:
                out = evaluate_numpy(expr, {"v": x}, dtype)
                return (out, np.sign(np.exp(out))) if return_sign else out
            value = evaluate_numpy(weighted, {"v": x, "b": b}, dtype)
            sign = np.sign(evaluate_numpy(total, {"v": x, "b": b}, dtype))
            return (value, sign) if return_sign else value

        label = formula if function != "logsumexp" else formula + " (with b: log|sum(b*exp(v))|)"
        return Impl("naive", label, "numpy", reduce, dtypes)
    if function == "binary_cross_entropy_with_logits":
        return Impl("naive", formula, "numpy", lambda x, y, **kw: _naive_bce(expr, dtype, x, y, **kw), dtypes)
    return None


def _naive_reduce(values: np.ndarray, dtype: str, reduction: str, denominator: Any = None) -> np.ndarray:
    """``sum`` or ``mean`` as a program in `dtype` computes them (NumPy's pairwise sum)."""
    from ._expr import evaluate_numpy, parse

    if reduction == "none":
        return values
    total = evaluate_numpy(parse("sum(v)"), {"v": values.ravel()}, dtype)
    if reduction == "sum":
        return total
    n = values.size if denominator is None else denominator
    return evaluate_numpy(parse("s/n"), {"s": total, "n": np.asarray(n, dtype=np.float64)}, dtype)


def _naive_bce(expr: Any, dtype: str, x: np.ndarray, y: np.ndarray, *, weight: Any = None, pos_weight: Any = None, reduction: str = "mean") -> np.ndarray:
    from ._expr import evaluate_numpy

    one = np.ones_like(x)
    w = one if weight is None else weight
    q = one if pos_weight is None else pos_weight
    losses = evaluate_numpy(expr, {"x": x, "y": y, "w": w, "q": q}, dtype)
    return _naive_reduce(losses, dtype, reduction)


def _naive_ce(
    dtype: str,
    x: np.ndarray,
    t: np.ndarray,
    *,
    weight: Any = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    """PyTorch's semantics, written the textbook way: ``-sum_c w_c q_c log(softmax(x)_c)``."""
    from ._expr import evaluate_numpy, parse

    n, c = x.shape
    work = np.float32 if dtype == "bfloat16" else np.dtype(dtype)
    index = np.issubdtype(t.dtype, np.integer)
    if index:
        active = np.ones(n, dtype=bool) if ignore_index is None else (t != ignore_index)
        onehot = np.zeros((n, c), dtype=work)
        rows = np.flatnonzero(active)
        onehot[rows, t[rows]] = 1
    else:
        active = np.ones(n, dtype=bool)
        onehot = t.astype(work)
    w = np.ones(c, dtype=work) if weight is None else weight.astype(work)
    eps = label_smoothing
    coef = evaluate_numpy(
        parse("w*((1 - s)*t + s/k)"),
        {"w": np.broadcast_to(w, (n, c)), "t": onehot, "s": np.full((n, c), eps), "k": np.full((n, c), float(c))},
        dtype,
    )
    loss = evaluate_numpy(parse("-sum(a*log(exp(v)/sum(exp(v))))"), {"a": coef, "v": x}, dtype)
    with np.errstate(invalid="ignore"):
        loss = np.where(active, loss, work.type(0) if hasattr(work, "type") else 0).astype(work)
    if reduction == "none":
        return loss
    if reduction == "sum" or not index:
        return _naive_reduce(loss, dtype, reduction)
    den = evaluate_numpy(parse("sum(v)"), {"v": np.where(active, w[np.where(active, t, 0)], 0).astype(work)}, dtype)
    return _naive_reduce(loss, dtype, "mean", denominator=den)


# ---------------------------------------------------------------- peers


def _numpy(function: str) -> Impl | None:
    dtypes = ("float16", "float32", "float64")
    if function == "softplus":
        return Impl("numpy", "numpy.logaddexp(0, x)", "numpy", lambda x: np.logaddexp(x.dtype.type(0), x), dtypes)
    if function == "tanh":
        return Impl("numpy", "numpy.tanh", "numpy", np.tanh, dtypes)
    return None


def _scipy(function: str) -> Impl | None:
    dtypes = ("float32", "float64")
    table = {
        "sigmoid": "expit",
        "log_sigmoid": "log_expit",
        "logit": "logit",
        "logsumexp": "logsumexp",
        "softmax": "softmax",
        "log_softmax": "log_softmax",
    }
    if function not in table:
        return None
    name = table[function]

    def call(x: np.ndarray, **kw: Any) -> Any:
        import scipy.special

        f = getattr(scipy.special, name)
        if function == "logsumexp":
            return f(x, b=kw.get("b"), return_sign=kw.get("return_sign", False))
        return f(x)

    return Impl("scipy", f"scipy.special.{name}", "numpy", call, dtypes)


def _torch(function: str) -> Impl | None:
    dtypes = ("float16", "bfloat16", "float32", "float64")

    def F() -> Any:
        import torch.nn.functional as F

        return F

    def autograd(op: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def grad(x: Any) -> Any:
            import torch

            t = x.detach().clone().requires_grad_(True)
            (g,) = torch.autograd.grad(op(t), t, torch.ones_like(t))
            return g

        return grad

    def torch_mod() -> Any:
        import torch

        return torch

    simple: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "sigmoid": ("torch.sigmoid", lambda x: torch_mod().sigmoid(x)),
        "log_sigmoid": ("torch.nn.functional.logsigmoid", lambda x: F().logsigmoid(x)),
        "softplus": ("torch.nn.functional.softplus", lambda x: F().softplus(x)),
        "logit": ("torch.logit", lambda x: torch_mod().logit(x)),
        "tanh": ("torch.tanh", lambda x: torch_mod().tanh(x)),
        "sigmoid_grad": ("autograd of torch.sigmoid", autograd(lambda t: torch_mod().sigmoid(t))),
        "tanh_grad": ("autograd of torch.tanh", autograd(lambda t: torch_mod().tanh(t))),
        "softmax": ("torch.softmax", lambda x: torch_mod().softmax(x, dim=-1)),
        "log_softmax": ("torch.log_softmax", lambda x: torch_mod().log_softmax(x, dim=-1)),
    }
    if function in simple:
        label, fn = simple[function]
        return Impl("torch", label, "torch", fn, dtypes)
    if function == "logsumexp":

        def lse(x: Any, *, b: Any = None, return_sign: bool = False) -> Any:
            if b is not None:
                raise Unsupported("torch.logsumexp takes no weights b")
            return torch_mod().logsumexp(x, dim=-1)

        return Impl("torch", "torch.logsumexp", "torch", lse, dtypes)
    if function == "binary_cross_entropy_with_logits":

        def bce(x: Any, y: Any, **kw: Any) -> Any:
            return F().binary_cross_entropy_with_logits(x, y, **kw)

        return Impl("torch", "torch.nn.functional.binary_cross_entropy_with_logits", "torch", bce, dtypes)
    if function == "cross_entropy_with_logits":

        def ce(x: Any, t: Any, *, ignore_index: int | None = None, **kw: Any) -> Any:
            return F().cross_entropy(x, t, ignore_index=-100 if ignore_index is None else ignore_index, **kw)

        return Impl("torch", "torch.nn.functional.cross_entropy", "torch", ce, dtypes)
    return None


def _jax(function: str) -> Impl | None:
    dtypes = ("float16", "bfloat16", "float32", "float64")

    def nn() -> Any:
        import jax

        return jax.nn

    def grad_of(name: str) -> Callable[[Any], Any]:
        def g(x: Any) -> Any:
            import jax
            import jax.numpy as jnp

            f = jax.nn.sigmoid if name == "sigmoid" else jnp.tanh
            return jax.vmap(jax.grad(f))(x)

        return g

    def jnp() -> Any:
        import jax.numpy as jnp

        return jnp

    def special() -> Any:
        import jax.scipy.special

        return jax.scipy.special

    simple: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "sigmoid": ("jax.nn.sigmoid", lambda x: nn().sigmoid(x)),
        "log_sigmoid": ("jax.nn.log_sigmoid", lambda x: nn().log_sigmoid(x)),
        "softplus": ("jax.nn.softplus", lambda x: nn().softplus(x)),
        "logit": ("jax.scipy.special.logit", lambda x: special().logit(x)),
        "tanh": ("jax.numpy.tanh", lambda x: jnp().tanh(x)),
        "sigmoid_grad": ("jax.grad of jax.nn.sigmoid", grad_of("sigmoid")),
        "tanh_grad": ("jax.grad of jax.numpy.tanh", grad_of("tanh")),
        "softmax": ("jax.nn.softmax", lambda x: nn().softmax(x, axis=-1)),
        "log_softmax": ("jax.nn.log_softmax", lambda x: nn().log_softmax(x, axis=-1)),
    }
    if function in simple:
        label, fn = simple[function]
        return Impl("jax", label, "jax", fn, dtypes, pad_vectors=function in ("softmax", "log_softmax"))
    if function == "logsumexp":

        def lse(x: Any, *, b: Any = None, return_sign: bool = False) -> Any:
            return special().logsumexp(x, b=b, return_sign=return_sign)

        return Impl("jax", "jax.scipy.special.logsumexp", "jax", lse, dtypes, pad_vectors=True)
    return None


def _tensorflow(function: str) -> Impl | None:  # pragma: no cover - TensorFlow is not installed here
    dtypes = ("float16", "bfloat16", "float32", "float64")

    def tf() -> Any:
        import tensorflow as tf

        return tf

    simple: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "sigmoid": ("tf.math.sigmoid", lambda x: tf().math.sigmoid(x)),
        "log_sigmoid": ("tf.math.log_sigmoid", lambda x: tf().math.log_sigmoid(x)),
        "softplus": ("tf.math.softplus", lambda x: tf().math.softplus(x)),
        "tanh": ("tf.math.tanh", lambda x: tf().math.tanh(x)),
        "softmax": ("tf.nn.softmax", lambda x: tf().nn.softmax(x, axis=-1)),
        "log_softmax": ("tf.nn.log_softmax", lambda x: tf().nn.log_softmax(x, axis=-1)),
    }
    if function in simple:
        label, fn = simple[function]
        return Impl("tensorflow", label, "tensorflow", fn, dtypes)
    if function == "logsumexp":

        def lse(x: Any, *, b: Any = None, return_sign: bool = False) -> Any:
            if b is not None:
                raise Unsupported("tf.math.reduce_logsumexp takes no weights b")
            return tf().math.reduce_logsumexp(x, axis=-1)

        return Impl("tensorflow", "tf.math.reduce_logsumexp", "tensorflow", lse, dtypes)
    if function == "binary_cross_entropy_with_logits":

        def bce(x: Any, y: Any, *, weight: Any = None, pos_weight: Any = None, reduction: str = "mean") -> Any:
            if weight is not None or pos_weight is not None:
                raise Unsupported("tf.nn.sigmoid_cross_entropy_with_logits takes no weights")
            out = tf().nn.sigmoid_cross_entropy_with_logits(labels=y, logits=x)
            return {"none": out, "sum": tf().reduce_sum(out), "mean": tf().reduce_mean(out)}[reduction]

        return Impl("tensorflow", "tf.nn.sigmoid_cross_entropy_with_logits", "tensorflow", bce, dtypes)
    return None


_PEER_FACTORIES: dict[str, Callable[[str], Impl | None]] = {
    "numpy": _numpy,
    "scipy": _scipy,
    "torch": _torch,
    "jax": _jax,
    "tensorflow": _tensorflow,
}


def available(function: str) -> dict[str, str]:
    """Which implementations of `function` exist, and for the missing ones why not.

    Returns a dict from implementation name to ``""`` (available) or a reason.

    >>> available("binary_cross_entropy_with_logits")["scipy"]
    'SciPy has no binary_cross_entropy_with_logits'
    """
    out: dict[str, str] = {"stablenn": ""}
    out["naive"] = "" if function in NAIVE_FORMULAS or function == "cross_entropy_with_logits" else (
        f"{function} is a formula already: no separate naive form"
    )
    names = {"numpy": "NumPy", "scipy": "SciPy", "torch": "PyTorch", "jax": "JAX", "tensorflow": "TensorFlow"}
    for peer in PEERS:
        if _PEER_FACTORIES[peer](function) is None:
            out[peer] = f"{names[peer]} has no {function}"
        elif not installed(peer):
            out[peer] = f"{names[peer]} is not installed"
        else:
            out[peer] = ""
    return out


def implementations(function: str, dtype: str, names: Sequence[str] | None = None) -> list[Impl]:
    """The implementations of `function` to audit in `dtype`.

    Parameters
    ----------
    function : str
        A public function of stablenn.
    dtype : str
        The format.
    names : sequence of str, optional
        Implementations asked for by name.  Default: stablenn, naive and every installed
        peer that has the function and the dtype (the others are left out quietly: the
        audit lists them as skipped).

    Raises
    ------
    ValueError
        If a named implementation is unknown, not installed, or has no such function.
    TypeError
        If a named implementation lacks `dtype`.
    """
    explicit = names is not None
    wanted = list(ALL_IMPLS if names is None else names)
    out = []
    for name in wanted:
        if name not in ALL_IMPLS:
            raise _messages.audit_unknown_impl(name, ALL_IMPLS)
        impl = make(function, dtype, name)
        if isinstance(impl, str):
            if explicit:
                raise _messages.audit_impl_unavailable(name, function, impl)
            continue
        if dtype not in impl.dtypes:
            if explicit:
                raise _messages.audit_impl_lacks_dtype(name, dtype, impl.dtypes)
            continue
        out.append(impl)
    return out


def make(function: str, dtype: str, name: str) -> Impl | str:
    """The implementation `name` of `function`, or the reason there is none."""
    reason = available(function).get(name, "unknown implementation")
    if reason:
        return reason
    if name == "stablenn":
        return _stablenn(function, dtype)
    if name == "naive":
        impl = _naive(function, dtype)
        assert impl is not None
        return impl
    impl = _PEER_FACTORIES[name](function)
    assert impl is not None
    return impl


def skipped(function: str, dtype: str) -> list[tuple[str, str]]:
    """The implementations a default audit leaves out, with the reason.

    >>> dict(skipped("softplus", "bfloat16"))["numpy"]
    'NumPy has no bfloat16'
    """
    out = []
    names = {"numpy": "NumPy", "scipy": "SciPy", "torch": "PyTorch", "jax": "JAX", "tensorflow": "TensorFlow"}
    for name, reason in available(function).items():
        if reason:
            out.append((name, reason))
            continue
        impl = make(function, dtype, name)
        assert not isinstance(impl, str)
        if dtype not in impl.dtypes:
            out.append((name, f"{names.get(name, name)} has no {dtype}" if name in names else f"no {dtype}"))
    return out


# ---------------------------------------------------------------- gradients (--grad)


def grad_implementations(function: str, dtype: str, names: Sequence[str] | None = None) -> tuple[list[Impl], list[str]]:
    """Implementations of the derivative d/dx of the elementwise `function`.

    In float32 and float64, ``stablenn._autodiff.gradient_impls`` (the gradients module's
    callers, NumPy in and out) gives stablenn's gradient through ``torch.autograd``
    (``stablenn``) and ``jax.grad`` (``stablenn-jax``), and the peers' autograd (``torch``,
    ``jax``).  Where it is missing (or in float16 and bfloat16, which it does not take) the
    audit calls them itself: stablenn's derivative function (``sigmoid_grad``,
    ``tanh_grad``) or autograd of the stablenn function through PyTorch (stablenn's
    rule), and the peers' autograd.  The naive derivative is the textbook formula (from
    the output for sigmoid and tanh).

    Returns the implementations and notes on what was used.
    """
    import stablenn

    notes: list[str] = []
    impls: list[Impl] = []
    provided: dict[str, Callable[..., Any]] | None = None
    if dtype in ("float32", "float64"):
        try:
            from stablenn._autodiff import gradient_impls

            provided = gradient_impls(function)
        except (ImportError, AttributeError, KeyError, ValueError) as exc:
            notes.append(f"stablenn._autodiff.gradient_impls is not available ({type(exc).__name__}): the audit called the gradients itself")
    if provided:
        rename = {"stablenn-torch": "stablenn"}
        for key, fn in provided.items():
            if "jax" in key:
                import jax

                jax.config.update("jax_enable_x64", True)  # float64 gradients need 64-bit JAX
            name = rename.get(key, key)
            how = {"stablenn": "stablenn rule through torch.autograd", "stablenn-jax": "stablenn rule through jax.grad",
                   "torch": "PyTorch's function, torch.autograd", "jax": "JAX's function, jax.grad"}.get(name, key)
            impls.append(Impl(name, f"{how} (gradient_impls)", "numpy", fn, ("float32", "float64")))
    else:
        dtypes = ("float16", "bfloat16", "float32", "float64")
        direct = {"sigmoid": "sigmoid_grad", "tanh": "tanh_grad"}.get(function)
        if direct is not None:
            backend = "torch" if dtype == "bfloat16" else "numpy"
            impls.append(Impl("stablenn", f"stablenn.{direct}", backend, getattr(stablenn, direct), dtypes))
        else:

            def through_torch(x: Any, _f: str = function) -> Any:
                import torch

                t = x.detach().clone().requires_grad_(True)
                (g,) = torch.autograd.grad(getattr(stablenn, _f)(t), t, torch.ones_like(t))
                return g

            impls.append(Impl("stablenn", f"autograd of stablenn.{function} (PyTorch, stablenn's rule)", "torch", through_torch, dtypes))
        for peer, make_peer in (("torch", _torch), ("jax", _jax)):
            base = make_peer(function)
            if base is None or not installed(peer) or function in ("sigmoid_grad", "tanh_grad"):
                continue  # (the peers' sigmoid_grad and tanh_grad are autograd already)
            if peer == "torch":

                def torch_grad(x: Any, _op: Callable[[Any], Any] = base.fn) -> Any:
                    import torch

                    t = x.detach().clone().requires_grad_(True)
                    (g,) = torch.autograd.grad(_op(t), t, torch.ones_like(t))
                    return g

                impls.append(Impl("torch", f"autograd of {base.label}", "torch", torch_grad, dtypes))
            else:

                def jax_grad(x: Any, _f: Callable[[Any], Any] = base.fn) -> Any:
                    import jax

                    return jax.vmap(jax.grad(_f))(x)

                impls.append(Impl("jax", f"jax.grad of {base.label}", "jax", jax_grad, dtypes))
    if function in _GRAD_NAIVE:
        from ._expr import evaluate_numpy, parse

        expr = parse(_GRAD_NAIVE[function])
        impls.insert(
            1,
            Impl(
                "naive",
                _GRAD_NAIVE[function],
                "numpy",
                lambda x, _e=expr: evaluate_numpy(_e, {"x": x}, dtype),
                ("float16", "bfloat16", "float32", "float64"),
                formula=_GRAD_NAIVE[function],
            ),
        )
    if names is not None:
        unknown = [n for n in names if n not in {i.name for i in impls}]
        if unknown:
            raise _messages.audit_impl_unavailable(unknown[0], f"the derivative of {function}", "no gradient implementation of that name")
        impls = [i for i in impls if i.name in names]
    return impls, notes
