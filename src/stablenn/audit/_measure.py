"""Measure a function's error against the mpmath oracle, on any array backend.

`measure` samples inputs (`_sampler`), computes their correctly rounded exact values
(`_oracle`, in worker processes for large batches), converts the inputs to the backend,
calls stablenn's function (or any implementation with the same signature), converts the
results back and reports the ULP distances (`_ulp`) against the budget (`_budgets`).

`accuracy_table` does that for every function and dtype and prints a table; running
``python -m stablenn.audit._measure`` prints it and exits with status 1 if any budget is
exceeded (the README's main-job command until the report exists).

>>> r = measure("sigmoid", "float32", samples=300, seed=1)
>>> r.max_ulp <= 1, r.count
(True, 300)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from stablenn import _messages

from . import _oracle, _sampler
from ._budgets import DTYPES, budget, logsumexp_tolerance
from ._ulp import bits, get_format, to_storage, ulp_distance

__all__ = ["BACKENDS", "FUNCTIONS", "Result", "accuracy_table", "format_table", "main", "measure"]

FUNCTIONS: tuple[str, ...] = (*_oracle.ELEMENTWISE, *_oracle.REDUCTIONS, *_oracle.LOSSES)
BACKENDS: tuple[str, ...] = ("numpy", "torch", "jax", "array_api_strict", "dask")
_BACKEND_DTYPES: dict[str, tuple[str, ...]] = {
    "numpy": ("float16", "float32", "float64"),
    "torch": ("float16", "bfloat16", "float32", "float64"),
    "jax": ("float16", "bfloat16", "float32", "float64"),
    "array_api_strict": ("float32", "float64"),
    "dask": ("float16", "float32", "float64"),
}
_KIND = {"logit": "probability", "sigmoid_grad_from_output": "probability", "tanh_grad_from_output": "unit"}


# ---------------------------------------------------------------- backends


class _Backend:
    """Conversions between sampled NumPy data and one array library."""

    def __init__(self, name: str) -> None:
        if name not in BACKENDS:
            raise _messages.audit_unknown_backend(name, BACKENDS)
        self.name = name
        if name == "torch":
            import torch

            self.lib = torch
        elif name == "jax":
            import jax

            # float64 needs 64-bit mode; without it JAX silently computes in float32.
            jax.config.update("jax_enable_x64", True)
            import jax.numpy as jnp

            self.lib = jnp
        elif name == "array_api_strict":
            import array_api_strict

            self.lib = array_api_strict
        elif name == "dask":
            import dask.array

            self.lib = dask.array
        else:
            self.lib = np

    def wrap(self, fn: Callable[..., Any], jit: bool) -> Callable[..., Any]:
        """On JAX with ``jit``: `fn` under ``jax.jit``, array arguments traced and the
        other keyword options (axis, reduction, ...) static, one compilation per shape."""
        if self.name != "jax" or not jit:
            return fn
        import jax

        cache: dict[Any, Callable[..., Any]] = {}

        def call(*arrays: Any, **kwargs: Any) -> Any:
            static = {k: v for k, v in kwargs.items() if not hasattr(v, "shape")}
            traced = {k: v for k, v in kwargs.items() if hasattr(v, "shape")}
            key = (tuple(sorted(static.items())), tuple(sorted(traced)))
            if key not in cache:
                cache[key] = jax.jit(lambda *a, **kw: fn(*a, **static, **kw))
            return cache[key](*arrays, **traced)

        return call

    @property
    def ftz(self) -> bool:
        """XLA on the CPU runs every computation with the processor's flush-to-zero and
        denormals-are-zero modes (jax-ml/jax#16200: by design): subnormal inputs read as 0
        and subnormal results come back 0.  Measured against that platform rule (`flush`)."""
        return self.name == "jax"

    def check(self, dtype: str) -> None:
        if dtype not in _BACKEND_DTYPES[self.name]:
            others = tuple(b for b, d in _BACKEND_DTYPES.items() if dtype in d)
            raise _messages.audit_backend_lacks_dtype(self.name, dtype, others)

    def array(self, values: np.ndarray, dtype: str) -> Any:
        """`values` (storage dtype) as a backend array of `dtype` (exact conversion)."""
        a = np.ascontiguousarray(values)
        if self.name == "numpy":
            return a.astype(dtype)
        if self.name == "torch":
            t = self.lib.from_numpy(a.astype(get_format(dtype).storage))
            return t.to(getattr(self.lib, dtype))
        if self.name == "jax":
            return self.lib.asarray(a.astype(get_format(dtype).storage)).astype(getattr(self.lib, dtype))
        if self.name == "array_api_strict":
            return self.lib.asarray(a.astype(dtype), dtype=getattr(self.lib, dtype))
        return self.lib.from_array(a.astype(dtype), chunks=max(1, (a.shape[0] + 2) // 3) if a.ndim else ())

    def integers(self, values: np.ndarray) -> Any:
        a = np.ascontiguousarray(values, dtype=np.int64)
        if self.name == "numpy":
            return a
        if self.name == "torch":
            return self.lib.from_numpy(a)
        if self.name == "jax":
            return self.lib.asarray(a)
        if self.name == "array_api_strict":
            return self.lib.asarray(a, dtype=self.lib.int64)
        return self.lib.from_array(a, chunks=max(1, (a.shape[0] + 2) // 3) if a.ndim else ())

    def numpy(self, value: Any, dtype: str) -> np.ndarray:
        """A backend result as NumPy values of `dtype`'s storage dtype (exact)."""
        if self.name == "torch":
            t = value.detach()
            if dtype == "bfloat16":
                t = t.to(self.lib.float32)
            out = t.cpu().numpy()
        elif self.name == "jax":
            if dtype == "bfloat16":
                value = value.astype(self.lib.float32)
            out = np.asarray(value)
        elif self.name == "array_api_strict":
            out = np.from_dlpack(value)
        elif self.name == "dask":
            out = np.asarray(value.compute())
        else:
            out = np.asarray(value)
        return to_storage(np.asarray(out), dtype)


def flush(values: np.ndarray | None, dtype: str) -> np.ndarray | None:
    """`values` with every subnormal of `dtype` replaced by a zero of its sign (FTZ/DAZ)."""
    if values is None:
        return None
    a = np.asarray(values)
    if a.dtype.kind != "f":
        return a
    tiny = 2.0 ** get_format(dtype).emin
    with np.errstate(invalid="ignore"):
        sub = (a != 0) & (np.abs(a.astype(np.float64)) < tiny)
    if not np.any(sub):
        return a
    return np.where(sub, np.copysign(np.zeros_like(a), a), a)


def _flush_case(case: Any, dtype: str) -> Any:
    """A sampled vector or loss batch as XLA:CPU reads it (subnormal inputs are 0)."""
    fields = {f.name: getattr(case, f.name) for f in dataclasses.fields(case)}
    return dataclasses.replace(case, **{k: flush(v, dtype) for k, v in fields.items() if isinstance(v, np.ndarray)})


# ---------------------------------------------------------------- results


@dataclass
class Result:
    """The error of one function in one dtype on one backend.

    ``count`` outputs were compared (components of vector results, elements and
    reductions of losses).  ``max_ulp``, ``p999_ulp`` (99.9th percentile) and
    ``frac_above_1ulp`` are over all of them; ``max_bits = log2(1 + max_ulp)``.
    ``nan_where_finite`` / ``inf_where_finite`` count NaN or infinite results where the
    exact value is finite; ``wrong_special`` counts outputs whose input holds a NaN or an
    infinity, or whose exact value is not finite, that differ from the documented value
    (``+0 == -0``; NaN matches NaN).  ``violations`` counts outputs above the budget
    (for logsumexp: also beyond `logsumexp_tolerance`); ``max_ulp_checked`` is the
    largest ULP among outputs not excused by that tolerance (equal to ``max_ulp``
    elsewhere).  ``worst_*`` describe the output with the largest (checked) error.
    """

    function: str
    dtype: str
    backend: str
    implementation: str
    count: int
    max_ulp: float
    p999_ulp: float
    frac_above_1ulp: float
    max_bits: float
    nan_where_finite: int
    inf_where_finite: int
    wrong_special: int
    budget: float | None
    violations: int
    max_ulp_checked: float
    worst_input: dict[str, Any] = field(default_factory=dict)
    worst_got: float = math.nan
    worst_exact: float = math.nan
    special_input: dict[str, Any] = field(default_factory=dict)
    special_got: float = math.nan
    special_exact: float = math.nan
    seconds_oracle: float = 0.0
    seconds_call: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no output breaks the budget (always True without a budget)."""
        return self.budget is None or (self.violations == 0 and self.wrong_special == 0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (floats, ints, strings and lists only)."""
        return asdict(self)

    def describe_worst(self, limit: int = 400) -> str:
        """One paragraph naming the worst input, the value got and the exact value."""
        text = ", ".join(f"{k}={_short(v)}" for k, v in self.worst_input.items())
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        out = (
            f"{self.function} {self.dtype} on {self.backend}: max {self.max_ulp_checked:.4g} ULP "
            f"(budget {self.budget}) at {text}; got {self.worst_got!r}, exact {self.worst_exact!r}"
        )
        if self.wrong_special:
            special = ", ".join(f"{k}={_short(v)}" for k, v in self.special_input.items())
            if len(special) > limit:
                special = special[: limit - 3] + "..."
            out += (
                f"; {self.wrong_special} wrong special value(s), first at {special}: "
                f"got {self.special_got!r}, documented {self.special_exact!r}"
            )
        return out


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > 12:
        return "[" + ", ".join(repr(v) for v in value[:12]) + f", ... ({len(value)} values)]"
    return repr(value)


class _Collector:
    """Accumulates (got, exact, input) triples and summarises them."""

    def __init__(self, function: str, dtype: str, ftz: bool = False) -> None:
        self.function = function
        self.dtype = dtype
        self.ftz = ftz  # a subnormal exact value may come back as a zero of its sign
        self.got: list[np.ndarray] = []
        self.exact: list[np.ndarray] = []
        self.special: list[np.ndarray] = []
        self.allowed: list[np.ndarray] = []  # absolute error excused (logsumexp tolerance)
        self.sign_bad: list[np.ndarray] = []
        self.labels: list[tuple[int, Callable[[int], dict[str, Any]]]] = []
        self.n = 0

    def add(
        self,
        got: np.ndarray,
        exact: np.ndarray,
        special: np.ndarray,
        describe: Callable[[int], dict[str, Any]],
        *,
        allowed: np.ndarray | None = None,
        sign_bad: np.ndarray | None = None,
    ) -> None:
        got = np.asarray(got).ravel()
        exact = np.asarray(exact).ravel()
        self.got.append(got)
        self.exact.append(exact)
        self.special.append(np.broadcast_to(np.asarray(special, dtype=bool), exact.shape).ravel())
        self.allowed.append(np.zeros(exact.shape) if allowed is None else np.asarray(allowed, dtype=np.float64).ravel())
        self.sign_bad.append(np.zeros(exact.shape, dtype=bool) if sign_bad is None else np.asarray(sign_bad).ravel())
        self.labels.append((self.n, describe))
        self.n += exact.size

    def result(self, backend: str, implementation: str, t_oracle: float, t_call: float) -> Result:
        fmt = get_format(self.dtype)
        b = budget(self.function, fmt)
        if self.n == 0:
            return Result(self.function, self.dtype, backend, implementation, 0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, b, 0, 0.0)
        got = np.concatenate(self.got)
        exact = np.concatenate(self.exact)
        special = np.concatenate(self.special)
        allowed = np.concatenate(self.allowed)
        sign_bad = np.concatenate(self.sign_bad)
        ulps = ulp_distance(got, exact, fmt)
        if self.ftz:
            flushed = flush(exact, self.dtype)
            ulps = np.minimum(ulps, ulp_distance(got, flushed, fmt))
            exact = np.where(got.astype(np.float64) == flushed.astype(np.float64), flushed, exact)
        ulps = np.where(sign_bad, np.inf, ulps)
        g64 = got.astype(np.float64)
        e64 = exact.astype(np.float64)
        finite_exact = np.isfinite(e64)
        nan_where_finite = int(np.sum(np.isnan(g64) & finite_exact))
        inf_where_finite = int(np.sum(np.isinf(g64) & finite_exact))
        special = special | ~finite_exact
        same = (g64 == e64) | (np.isnan(g64) & np.isnan(e64))
        wrong_special = int(np.sum(special & (~same | sign_bad)))
        with np.errstate(invalid="ignore"):
            abs_err = np.abs(g64 - e64)
        excused = finite_exact & (abs_err <= allowed) & ~sign_bad
        over = ulps > (b if b is not None else math.inf)
        violations = int(np.sum(over & ~excused & ~special))
        checked = np.where(excused, np.minimum(ulps, b if b is not None else ulps), ulps)
        worst = int(np.argmax(np.where(np.isnan(checked), -1.0, checked)))
        start, describe = self._owner(worst)
        bad_special = np.flatnonzero(special & (~same | sign_bad))
        special_fields: dict[str, Any] = {}
        if bad_special.size:
            first = int(bad_special[0])
            s_start, s_describe = self._owner(first)
            special_fields = {
                "special_input": s_describe(first - s_start),
                "special_got": float(g64[first]),
                "special_exact": float(e64[first]),
            }
        return Result(
            function=self.function,
            dtype=self.dtype,
            backend=backend,
            implementation=implementation,
            count=int(exact.size),
            max_ulp=float(np.max(ulps)),
            p999_ulp=float(np.percentile(ulps, 99.9, method="higher")),
            frac_above_1ulp=float(np.mean(ulps > 1)),
            max_bits=float(bits(np.max(ulps))),
            nan_where_finite=nan_where_finite,
            inf_where_finite=inf_where_finite,
            wrong_special=wrong_special,
            budget=b,
            violations=violations,
            max_ulp_checked=float(np.max(checked)),
            worst_input=describe(worst - start),
            worst_got=float(g64[worst]),
            worst_exact=float(e64[worst]),
            seconds_oracle=t_oracle,
            seconds_call=t_call,
            **special_fields,
        )

    def _owner(self, index: int) -> tuple[int, Callable[[int], dict[str, Any]]]:
        owner = max(i for i, (start, _) in enumerate(self.labels) if start <= index)
        return self.labels[owner]


# ---------------------------------------------------------------- oracle tasks (module level: picklable)


def _task_elementwise(name: str, x: np.ndarray, dtype: str) -> np.ndarray:
    return _oracle.elementwise(name, x, dtype)


def _task_vector(x: np.ndarray, b: np.ndarray | None, dtype: str, want_softmax: bool) -> _oracle.VectorReference:
    return _oracle.vector(x, dtype, b, softmax=want_softmax)


def _task_bce(batch: _sampler.BceBatch, dtype: str) -> tuple[np.ndarray, float, float]:
    return _oracle.bce_all(batch.logits, batch.targets, dtype, weight=batch.weight, pos_weight=batch.pos_weight)


def _task_ce(batch: _sampler.CrossEntropyBatch, dtype: str) -> tuple[np.ndarray, float, float]:
    return _oracle.cross_entropy_all(
        batch.logits,
        batch.targets,
        dtype,
        weight=batch.weight,
        label_smoothing=batch.label_smoothing,
        ignore_index=batch.ignore_index,
    )


_VECTOR_CACHE: dict[tuple[str, int, int, bool, bool], tuple[list[Any], list[Any]]] = {}


def _vector_references(
    dtype: str, samples: int, seed: int, weights: bool, processes: int | None, few: bool = False, ftz: bool = False
) -> tuple[list[Any], list[Any]]:
    """Sampled vectors and their references; softmax and log_softmax share one evaluation.

    ``ftz``: subnormal entries flushed to zero first (the platform rule of `_Backend.ftz`).
    """
    key = (dtype, samples, seed, weights, few, ftz)
    if key not in _VECTOR_CACHE:
        lengths = _sampler.FEW_LENGTHS if few else None
        cases = _sampler.sample_vectors(dtype, samples, seed, weights=weights, lengths=lengths)
        if ftz:
            cases = [_flush_case(c, dtype) for c in cases]
        refs = _oracle.parallel_map(_task_vector, [(c.x, c.b, dtype, not weights) for c in cases], processes=processes)
        _VECTOR_CACHE.clear()  # keep one set: 20,000 vectors of references are large
        _VECTOR_CACHE[key] = (cases, refs)
    return _VECTOR_CACHE[key]


# ---------------------------------------------------------------- measure


def _implementation(function: str, impl: Callable[..., Any] | None) -> tuple[Callable[..., Any], str]:
    if impl is not None:
        return impl, getattr(impl, "__qualname__", getattr(impl, "__name__", repr(impl)))
    import stablenn

    return getattr(stablenn, function), "stablenn"


def _vector_dict(case: Any) -> dict[str, Any]:
    out = {"kind": case.kind, "x": case.x.astype(np.float64).tolist()}
    if case.b is not None:
        out["b"] = case.b.astype(np.float64).tolist()
    return out


def measure(
    function: str,
    dtype: Any,
    *,
    samples: int = 20000,
    seed: int = 0,
    backend: str = "numpy",
    impl: Callable[..., Any] | None = None,
    processes: int | None = None,
    shapes: str | None = None,
    jit: bool | None = None,
) -> Result:
    """Measure `function` in `dtype` against the oracle.

    Parameters
    ----------
    function : str
        A public function of stablenn (`FUNCTIONS`).
    dtype : str or dtype
        ``float16``, ``bfloat16``, ``float32`` or ``float64`` (the backend must have it:
        NumPy and Dask have no bfloat16, array-api-strict no float16 either).
    samples : int
        Scalar inputs for elementwise functions, vectors for reductions, elements for
        binary cross-entropy, rows for cross-entropy.
    seed : int
        Seed of the samplers.
    backend : str
        ``numpy``, ``torch``, ``jax`` (64-bit mode is switched on), ``array_api_strict``
        or ``dask``: the sampled data are converted to it exactly, the function is
        called, the results converted back.
    impl : callable, optional
        An implementation with stablenn's signature to measure instead (a peer, the
        naive formula); default the stablenn function.
    processes : int, optional
        Worker processes for the oracle (default ``min(2, cpu count)``).
    shapes : {"varied", "few"}, optional
        ``"varied"``: vector lengths log-uniform on 1 .. 1000, one call per vector, loss
        batches of any size.  ``"few"``: lengths, batch sizes and class counts from small
        menus (`_sampler.FEW_LENGTHS`, ...), vectors of one length stacked into one 2-D
        call along the last axis.  Default ``"few"`` on JAX (which compiles for every new
        shape) and Dask (which builds a graph per call; the 2-D calls are chunked along
        the reduced axis too), ``"varied"`` elsewhere.
    jit : bool, optional
        On JAX, measure the function under ``jax.jit`` (array arguments traced, options
        static: one compilation per shape and option set) or eagerly (one compilation per
        operation and shape).  Default: jit for the elementwise functions and reductions,
        eager for the losses (whose many option sets would each compile).  Ignored on
        other backends.

    Returns
    -------
    Result

    Notes
    -----
    Reductions are called once per vector: logsumexp with ``return_sign=True`` when the
    vector has weights ``b`` (the sign must match too), softmax and log_softmax on every
    component.  Losses are measured per element / per row (``reduction="none"``) and
    for ``"mean"`` and ``"sum"`` of each batch; all count towards the same result.
    """
    fmt = get_format(dtype)
    name = fmt.name
    if function not in FUNCTIONS:
        raise _messages.audit_unknown_function(function, FUNCTIONS)
    if not isinstance(samples, (int, np.integer)) or isinstance(samples, bool) or samples < 1:
        raise _messages.audit_bad_samples(samples)
    be = _Backend(backend)
    be.check(name)
    fn, label = _implementation(function, impl)
    if jit is None:
        jit = function not in _oracle.LOSSES
    fn = be.wrap(fn, jit)
    if be.name == "jax" and jit:
        label += " (jax.jit)"
    col = _Collector(function, name, ftz=be.ftz)
    few = (shapes or ("few" if backend in ("jax", "dask") else "varied")) == "few"
    if function in _oracle.ELEMENTWISE:
        t_oracle, t_call = _measure_elementwise(function, name, samples, seed, be, fn, col, processes)
    elif function in _oracle.REDUCTIONS:
        t_oracle, t_call = _measure_reduction(function, name, samples, seed, be, fn, col, processes, few)
    elif function == "binary_cross_entropy_with_logits":
        t_oracle, t_call = _measure_bce(name, samples, seed, be, fn, col, processes, few)
    else:
        t_oracle, t_call = _measure_ce(name, samples, seed, be, fn, col, processes, few)
    return col.result(backend, label, t_oracle, t_call)


def _measure_elementwise(
    function: str, dtype: str, samples: int, seed: int, be: _Backend, fn: Callable[..., Any], col: _Collector, processes: int | None
) -> tuple[float, float]:
    x = _sampler.sample_unary(dtype, samples, seed, kind=_KIND.get(function, "real"))
    if be.ftz:
        x = flush(x, dtype)
    t0 = time.perf_counter()
    chunks = np.array_split(x, max(1, samples // 500))
    exact = np.concatenate(_oracle.parallel_map(_task_elementwise, [(function, c, dtype) for c in chunks], processes=processes, min_items=4))
    t1 = time.perf_counter()
    got = be.numpy(fn(be.array(x, dtype)), dtype)
    t2 = time.perf_counter()
    special = ~np.isfinite(x.astype(np.float64))
    col.add(got, exact, special, lambda i: {"x": float(x[i])})
    return t1 - t0, t2 - t1


def _measure_reduction(
    function: str,
    dtype: str,
    samples: int,
    seed: int,
    be: _Backend,
    fn: Callable[..., Any],
    col: _Collector,
    processes: int | None,
    few: bool = False,
) -> tuple[float, float]:
    weights = function == "logsumexp"
    t0 = time.perf_counter()
    cases, refs = _vector_references(dtype, samples, seed, weights, processes, few, be.ftz)
    t1 = time.perf_counter()
    fmt = get_format(dtype)
    if few:
        # Few shapes: vectors of one length (and the same presence of b) are stacked into
        # one 2-D call along the last axis, then compared row by row.
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, case in enumerate(cases):
            groups.setdefault((case.x.size, case.b is None), []).append(i)
        results: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        for (_, no_b), idx in groups.items():
            x2 = be.array(np.stack([cases[i].x for i in idx]), dtype)
            if function != "logsumexp":
                out = be.numpy(fn(x2, axis=-1), dtype)
                for row, i in enumerate(idx):
                    results[i] = (out[row], None)
            elif no_b:
                out = be.numpy(fn(x2, axis=-1), dtype)
                for row, i in enumerate(idx):
                    results[i] = (out[row : row + 1], None)
            else:
                b2 = be.array(np.stack([cases[i].b for i in idx]), dtype)
                value, sign = fn(x2, axis=-1, b=b2, return_sign=True)
                value, sign = be.numpy(value, dtype), be.numpy(sign, dtype).astype(np.float64)
                for row, i in enumerate(idx):
                    results[i] = (value[row : row + 1], sign[row : row + 1])
    for i, (case, ref) in enumerate(zip(cases, refs, strict=True)):
        # A component is a special output when its own input entry is not finite (softmax,
        # log_softmax) or its exact value is not finite (added by the collector); finite
        # components of vectors holding -inf are ordinary outputs, held to the budget.
        special = ~np.isfinite(case.x.astype(np.float64)) if function != "logsumexp" else np.array([False])
        describe = (lambda c: lambda k: _vector_dict(c) | ({"component": k} if function != "logsumexp" else {}))(case)
        if few:
            got, got_sign = results[i]
        else:
            x = be.array(case.x, dtype)
            got_sign = None
            if function != "logsumexp" or case.b is None:
                got = be.numpy(fn(x), dtype)
            else:
                value, sign = fn(x, b=be.array(case.b, dtype), return_sign=True)
                got = be.numpy(value, dtype)
                got_sign = be.numpy(sign, dtype).astype(np.float64).reshape(1)
        if function == "logsumexp":
            sign_bad = None
            if got_sign is not None:
                s_got = float(got_sign[0])
                sign_bad = np.array([not (s_got == ref.sign or (math.isnan(ref.sign) and math.isnan(s_got)))])
            allowed = np.array([logsumexp_tolerance(case.x, case.b, ref.logsumexp, fmt)])
            exact = np.array([ref.logsumexp])
            col.add(got, to_storage(exact, dtype), special, describe, allowed=allowed, sign_bad=sign_bad)
        else:
            exact = ref.softmax if function == "softmax" else ref.log_softmax
            col.add(got, to_storage(exact, dtype), special, describe)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def _loss_describe(batch: Any, what: str) -> Callable[[int], dict[str, Any]]:
    def describe(i: int) -> dict[str, Any]:
        out: dict[str, Any] = {"output": what}
        for key, value in vars(batch).items():
            if isinstance(value, np.ndarray):
                arr = value.astype(np.float64) if value.dtype.kind == "f" else value
                if what.startswith("element") and arr.ndim >= 1 and arr.shape[0] > i and key != "weight":
                    out[key] = arr[i].tolist()
                else:
                    out[key] = arr.tolist()
            else:
                out[key] = value
        if what.startswith("element"):
            out["index"] = i
        return out

    return describe


def _measure_bce(
    dtype: str, samples: int, seed: int, be: _Backend, fn: Callable[..., Any], col: _Collector, processes: int | None, few: bool = False
) -> tuple[float, float]:
    batches = _sampler.sample_bce(dtype, samples, seed, sizes=_sampler.FEW_SIZES if few else None)
    if be.ftz:
        batches = [_flush_case(b, dtype) for b in batches]
    t0 = time.perf_counter()
    refs = _oracle.parallel_map(_task_bce, [(b, dtype) for b in batches], processes=processes, min_items=4)
    t1 = time.perf_counter()
    for batch, (none, mean, total) in zip(batches, refs, strict=True):
        kw = {
            "weight": None if batch.weight is None else be.array(batch.weight, dtype),
            "pos_weight": None if batch.pos_weight is None else be.array(batch.pos_weight, dtype),
        }
        x, y = be.array(batch.logits, dtype), be.array(batch.targets, dtype)
        special_el = ~np.isfinite(batch.logits.astype(np.float64))
        col.add(be.numpy(fn(x, y, reduction="none", **kw), dtype), none, special_el, _loss_describe(batch, "element (reduction='none')"))
        for red, ref in (("mean", mean), ("sum", total)):
            got = be.numpy(fn(x, y, reduction=red, **kw), dtype)
            col.add(got, to_storage(np.array([ref]), dtype), np.array([False]), _loss_describe(batch, f"reduction='{red}'"))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def _measure_ce(
    dtype: str, samples: int, seed: int, be: _Backend, fn: Callable[..., Any], col: _Collector, processes: int | None, few: bool = False
) -> tuple[float, float]:
    if few:
        batches = _sampler.sample_cross_entropy(
            dtype, samples, seed, rows=_sampler.FEW_ROWS, classes=_sampler.FEW_CLASSES, smoothing=_sampler.FEW_SMOOTHING
        )
    else:
        batches = _sampler.sample_cross_entropy(dtype, samples, seed)
    if be.ftz:
        batches = [_flush_case(b, dtype) for b in batches]
    t0 = time.perf_counter()
    refs = _oracle.parallel_map(_task_ce, [(b, dtype) for b in batches], processes=processes, min_items=4)
    t1 = time.perf_counter()
    for batch, (none, mean, total) in zip(batches, refs, strict=True):
        x = be.array(batch.logits, dtype)
        if batch.targets.ndim == 1:
            t = be.integers(batch.targets)
        else:
            t = be.array(batch.targets, dtype)
        kw: dict[str, Any] = {
            "weight": None if batch.weight is None else be.array(batch.weight, dtype),
            "label_smoothing": batch.label_smoothing,
            "ignore_index": batch.ignore_index,
        }
        # rows are special outputs only where the exact loss is not finite (the collector
        # adds those): a finite loss of a row holding -inf logits is held to the budget
        col.add(be.numpy(fn(x, t, reduction="none", **kw), dtype), none, np.zeros(len(none), dtype=bool), _loss_describe(batch, "element (row, reduction='none')"))
        for red, ref in (("mean", mean), ("sum", total)):
            got = be.numpy(fn(x, t, reduction=red, **kw), dtype)
            col.add(got, to_storage(np.array([ref]), dtype), np.array([False]), _loss_describe(batch, f"reduction='{red}'"))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


# ---------------------------------------------------------------- the table


def _default_backend(dtype: str, backend: str) -> str:
    """bfloat16 is measured on PyTorch when the requested backend lacks it."""
    if dtype in _BACKEND_DTYPES[backend]:
        return backend
    return "torch"


def accuracy_table(
    samples: int = 20000,
    *,
    functions: Sequence[str] = FUNCTIONS,
    dtypes: Sequence[str] = DTYPES,
    backend: str = "numpy",
    seed: int = 0,
    processes: int | None = None,
    vector_samples: int | None = None,
    out: Any = None,
) -> list[Result]:
    """Measure every function in every dtype and print the table (to `out`, a stream).

    ``vector_samples`` (default `samples`) sets the count for reductions and losses.
    bfloat16 is measured on PyTorch when `backend` lacks it.
    """
    results = []
    for function in functions:
        for dtype in dtypes:
            n = samples if function in _oracle.ELEMENTWISE else (vector_samples or samples)
            results.append(
                measure(function, dtype, samples=n, seed=seed, backend=_default_backend(dtype, backend), processes=processes)
            )
            if out is not None:
                print(_row(results[-1]), file=out, flush=True)
    return results


_HEADER = (
    f"{'function':<34} {'dtype':<9} {'backend':<7} {'n':>7} {'max ULP':>10} {'p99.9':>8} "
    f"{'>1 ULP':>8} {'bits':>5} {'NaN/inf':>7} {'special':>7} {'budget':>6}  verdict"
)


def _row(r: Result) -> str:
    budget_text = "-" if r.budget is None else f"{r.budget:g}"
    verdict = "documented" if r.budget is None else ("ok" if r.ok else "OVER BUDGET")
    checked = f"{r.max_ulp_checked:.3g}"
    if r.max_ulp_checked != r.max_ulp:
        checked += "*"
    return (
        f"{r.function:<34} {r.dtype:<9} {r.backend[:7]:<7} {r.count:>7} {checked:>10} {r.p999_ulp:>8.3g} "
        f"{r.frac_above_1ulp:>8.2%} {r.max_bits:>5.2f} {r.nan_where_finite + r.inf_where_finite:>7} "
        f"{r.wrong_special:>7} {budget_text:>6}  {verdict}"
    )


def format_table(results: Sequence[Result]) -> str:
    """The table of `accuracy_table` as text, with the worst inputs of failures below it."""
    lines = [_HEADER, "-" * len(_HEADER)]
    lines += [_row(r) for r in results]
    notes = [r for r in results if r.max_ulp_checked != r.max_ulp]
    if notes:
        lines.append(
            "* logsumexp near 0: the raw maximum (" + ", ".join(f"{r.dtype} {r.max_ulp:.3g}" for r in notes)
            + " ULP) is within the conditioning tolerance of stablenn.audit._budgets.logsumexp_tolerance; "
            "the column shows the largest error not excused by it."
        )
    for r in results:
        if not r.ok:
            lines.append("OVER BUDGET: " + r.describe_worst())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stablenn.audit._measure``: print the accuracy table; 1 if over budget."""
    parser = argparse.ArgumentParser(prog="python -m stablenn.audit._measure", description=main.__doc__)
    parser.add_argument("--samples", type=int, default=20000, help="scalar inputs per elementwise function and dtype")
    parser.add_argument("--vector-samples", type=int, default=None, help="vectors / elements / rows for reductions and losses")
    parser.add_argument("--functions", nargs="*", default=list(FUNCTIONS), choices=FUNCTIONS, metavar="FUNCTION")
    parser.add_argument("--dtypes", nargs="*", default=list(DTYPES), choices=DTYPES, metavar="DTYPE")
    parser.add_argument("--backend", default="numpy", choices=BACKENDS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(_HEADER, flush=True)
    print("-" * len(_HEADER), flush=True)
    results = accuracy_table(
        args.samples,
        functions=args.functions,
        dtypes=args.dtypes,
        backend=args.backend,
        seed=args.seed,
        vector_samples=args.vector_samples,
        out=sys.stdout,
    )
    tail = format_table(results).splitlines()[2 + len(results) :]
    for line in tail:
        print(line)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
