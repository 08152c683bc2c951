"""The audit: every implementation of a function (or a typed formula) on the same inputs.

`audit_function` samples inputs once, computes their correctly rounded exact values once
(the mpmath oracle, in worker processes on every core), then calls each implementation
(`stablenn.audit._peers`) on those inputs and measures it (`stablenn.audit._measure`'s
collector: max ULP, 99.9th percentile, NaN/inf where finite, wrong special values, the
worst input).  For functions of one scalar input it also finds the input intervals where
each implementation breaks (`stablenn.audit._intervals`).

`audit_formula` does the same for a formula the user typed (`stablenn.audit._expr`):
the formula as written, evaluated in the dtype with NumPy, and the stable form the
rewrite rules suggest (`stablenn.audit._rewrites`), against the formula's exact value.

`audit_gradient` audits the derivative of an elementwise function (``--grad``).

>>> a = audit_function("softplus", "float64", samples=400, impls=["stablenn", "naive"], processes=1)
>>> [(r.name, r.result.max_ulp <= 1) for r in a.runs]
[('stablenn', True), ('naive', False)]
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stablenn import _messages

from . import _oracle, _sampler
from ._intervals import Interval, find_intervals
from ._measure import _KIND, Result, _Collector, _loss_describe, _task_bce, _task_ce, _task_vector, _vector_dict
from ._peers import Impl, Unsupported, grad_implementations, implementations, skipped
from ._ulp import from_ordinal, get_format, ordinal, to_storage, ulp_distance

__all__ = [
    "DEFAULT_SAMPLES",
    "FUNCTIONS",
    "Audit",
    "Run",
    "audit_formula",
    "audit_function",
    "audit_gradient",
    "default_samples",
    "grad_functions",
    "parse_range",
]

FUNCTIONS: tuple[str, ...] = (*_oracle.ELEMENTWISE, *_oracle.REDUCTIONS, *_oracle.LOSSES)

#: Inputs per audit when ``--samples`` is not given, by kind of input.
DEFAULT_SAMPLES: dict[str, int] = {
    "elementwise": 20000,  # scalars
    "vector": 2000,  # vectors of 1 to 1000 entries (about 150,000 outputs)
    "bce": 20000,  # elements, in batches of 1 to 1000
    "ce": 1000,  # rows of 1 to 1000 classes
    "formula": 20000,  # points of a formula of scalar variables
    "vector formula": 2000,  # points of a formula with vector variables (1 to 64 entries)
}

VECTOR_FORMULA_LENGTH = 64
"""Longest vector sampled for a formula's vector variables (the exact evaluation of a
formula is interval arithmetic: far slower than the oracle's dedicated reductions)."""


def default_samples(function: str | None) -> int:
    """The default sample count of an audit of `function` (None: a formula of scalars)."""
    if function is None:
        return DEFAULT_SAMPLES["formula"]
    if function in _oracle.ELEMENTWISE:
        return DEFAULT_SAMPLES["elementwise"]
    if function in _oracle.REDUCTIONS:
        return DEFAULT_SAMPLES["vector"]
    return DEFAULT_SAMPLES["bce" if function == "binary_cross_entropy_with_logits" else "ce"]


@dataclass
class Run:
    """One implementation's audit.

    ``points`` holds, for audits of one scalar input (and formulas of scalar variables),
    the inputs (``x``: one column per variable), and for every audit the exact values and
    ULP errors of each compared output, for plots.
    """

    name: str
    label: str
    result: Result
    intervals: list[Interval] = field(default_factory=list)
    intervals_left_out: int = 0
    skipped_cases: int = 0
    raised: int = 0
    points: dict[str, np.ndarray] = field(default_factory=dict)
    failed: str | None = None


@dataclass
class Audit:
    """An audit of one subject in one dtype: the runs of every implementation."""

    subject: str
    kind: str  # "function", "formula" or "gradient"
    dtype: str
    samples: int
    seed: int
    threshold: float
    runs: list[Run] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    rewrites: list[Any] = field(default_factory=list)
    variables: tuple[str, ...] = ()
    vector_variables: tuple[str, ...] = ()
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def run(self, name: str) -> Run:
        """The run of implementation `name`."""
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(name)


# ---------------------------------------------------------------- timing


class _Clock:
    """Wall time and CPU time of this process and its finished worker processes."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = self._cpu()

    @staticmethod
    def _cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def stop(self) -> dict[str, float]:
        return {"wall_s": time.perf_counter() - self.wall, "cpu_s": self._cpu() - self.cpu}


# ---------------------------------------------------------------- ranges and sampling


def parse_range(text: str) -> tuple[str | None, float, float]:
    """``"LO:HI"`` or ``"NAME=LO:HI"`` as ``(name or None, lo, hi)``; finite, ``lo < hi``.

    >>> parse_range("-1e300:1e300")
    (None, -1e+300, 1e+300)
    >>> parse_range("y=0:1")
    ('y', 0.0, 1.0)
    """
    name = None
    body = text
    if "=" in text:
        name, _, body = text.partition("=")
        name = name.strip()
        if not name.isidentifier():
            raise _messages.audit_bad_range(text, f"{name!r} is not a variable name")
    parts = body.split(":")
    if len(parts) != 2:
        raise _messages.audit_bad_range(text, "expected one ':' between LO and HI")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise _messages.audit_bad_range(text, "LO and HI must be numbers") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise _messages.audit_bad_range(text, "LO and HI must be finite")
    if not lo < hi:
        raise _messages.audit_bad_range(text, "the range is empty (LO must be below HI)")
    return name, lo, hi


def _inward(lo: float, hi: float, dtype: str, text: str) -> tuple[float, float]:
    """The range's ends rounded inward to `dtype` (refused when no float of it is inside)."""
    fmt = get_format(dtype)
    grid = [float(v) for v in from_ordinal([-fmt.max_ordinal + 1, fmt.max_ordinal - 1], fmt)]
    lo_c, hi_c = max(lo, grid[0]), min(hi, grid[1])
    o_lo = _ord_ceil(lo_c, fmt)
    o_hi = _ord_floor(hi_c, fmt)
    if o_lo > o_hi or lo_c > hi_c:
        raise _messages.audit_bad_range(text, f"no {dtype} value lies inside it")
    a, b = (float(v) for v in from_ordinal([o_lo, o_hi], fmt))
    return a, b


def _ord_ceil(v: float, fmt: Any) -> int:
    """Ordinal of the smallest float of `fmt` >= v (v within the finite range)."""
    with np.errstate(over="ignore"):
        r = float(np.float64(v).astype(fmt.storage)) if fmt.name != "bfloat16" else float(_sampler._narrow([v], fmt)[0])
    o = int(ordinal(np.array([r], dtype=fmt.storage), fmt)[0])
    return o + 1 if r < v else o


def _ord_floor(v: float, fmt: Any) -> int:
    with np.errstate(over="ignore"):
        r = float(np.float64(v).astype(fmt.storage)) if fmt.name != "bfloat16" else float(_sampler._narrow([v], fmt)[0])
    o = int(ordinal(np.array([r], dtype=fmt.storage), fmt)[0])
    return o - 1 if r > v else o


def sample_scalar(dtype: str, n: int, seed: int, bounds: tuple[float, float] | None, kind: str = "real") -> np.ndarray:
    """`n` inputs of `dtype` for a scalar variable, within `bounds` if given.

    Without bounds: `stablenn.audit._sampler.sample_unary`.  With bounds: the samples of
    `sample_unary` that fall inside (hard regions, every exponent), the ends themselves,
    and the rest uniform over the bit patterns between the ends.
    """
    fmt = get_format(dtype)
    base = _sampler.sample_unary(fmt, n, seed, kind=kind)
    if bounds is None:
        return base
    lo, hi = bounds
    with np.errstate(invalid="ignore"):
        inside = base[(base.astype(np.float64) >= lo) & (base.astype(np.float64) <= hi)]
    inside = inside[: int(0.4 * n)]
    ends = np.array([lo, hi], dtype=np.float64).astype(fmt.storage)
    rng = np.random.default_rng([seed, 0xA0D])
    m = max(0, n - inside.size - ends.size)
    o_lo, o_hi = (int(v) for v in ordinal(ends, fmt))
    uniform = from_ordinal(rng.integers(o_lo, o_hi + 1, size=m, dtype=np.int64), fmt)
    return np.concatenate([ends, inside, uniform])[:n].astype(fmt.storage)


# ---------------------------------------------------------------- calling implementations


class _Caller:
    """Calls one implementation, converting inputs and results; counts what it refuses."""

    def __init__(self, impl: Impl, dtype: str) -> None:
        self.impl = impl
        self.dtype = dtype
        self.skipped = 0
        self.raised = 0
        self.failed: str | None = None
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call with NumPy storage arrays (ints for class indices); None when skipped."""
        if self.failed is not None:
            return None
        impl, dtype = self.impl, self.dtype
        cut = None
        if impl.pad_vectors and len(args) == 1 and args[0].ndim == 1 and args[0].size:
            cut = args[0].size
            width = 1 << (cut - 1).bit_length()
            args = (np.concatenate([args[0], np.full(width - cut, -np.inf, dtype=args[0].dtype)]),)
            if kwargs.get("b") is not None:
                b = kwargs["b"]
                kwargs = dict(kwargs, b=np.concatenate([b, np.zeros(width - cut, dtype=b.dtype)]))
        self.calls += 1
        try:
            import warnings

            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # peers warn about overflow, casts...: the audit measures it
                conv = [impl.integers(a) if np.issubdtype(a.dtype, np.integer) else impl.array(a, dtype) for a in args]
                kw = {k: (impl.array(v, dtype) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
                out = impl.fn(*conv, **kw)
                if isinstance(out, tuple):
                    return tuple(impl.numpy(o, dtype) for o in out)
                res = impl.numpy(out, dtype)
                if cut is not None and res.ndim == 1 and res.size > cut:
                    res = res[:cut]
                return res
        except Unsupported:
            self.skipped += 1
            return None
        except Exception as exc:  # a peer that raises: part of the audit, not a crash
            if self.calls == 1:
                self.failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
                return None
            self.raised += 1
            return "raised"


def _nan_like(shape: Any, dtype: str) -> np.ndarray:
    return np.full(shape, np.nan, dtype=get_format(dtype).storage)


def _run_of(impl: Impl, caller: _Caller, col: _Collector, dtype: str, t: float) -> Run:
    if col.n == 0 and caller.failed is None:
        caller.failed = "took none of the inputs"
    result = col.result(impl.backend, impl.name, 0.0, t)
    return Run(impl.name, impl.label, result, skipped_cases=caller.skipped, raised=caller.raised, failed=caller.failed)


# ---------------------------------------------------------------- functions


def _check_common(samples: Any, threshold: float) -> None:
    if not isinstance(samples, (int, np.integer)) or isinstance(samples, bool) or samples < 1:
        raise _messages.audit_bad_samples(samples)
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise _messages.audit_bad_threshold(threshold)


def audit_function(
    function: str,
    dtype: str,
    *,
    samples: int | None = None,
    seed: int = 0,
    impls: Sequence[str] | None = None,
    threshold: float = 1.0,
    bounds: tuple[float, float] | None = None,
    processes: int | None = None,
    intervals: bool = True,
) -> Audit:
    """Audit every implementation of the public function `function` in `dtype`.

    Parameters
    ----------
    function : str
        A public function of stablenn (`FUNCTIONS`).
    dtype : str
        ``float16``, ``bfloat16``, ``float32`` or ``float64``.
    samples : int, optional
        Inputs (`default_samples`): scalars, vectors, loss elements or rows.
    seed : int
        Seed of the samplers.
    impls : sequence of str, optional
        Implementations to compare (default: all available, `stablenn.audit._peers`).
    threshold : float
        ULP error above which an input counts as bad for the intervals.
    bounds : (float, float), optional
        Sample a scalar input only within these ends (values of `dtype`).
    processes : int, optional
        Worker processes for the oracle (default: every core).
    intervals : bool
        Find the bad intervals (functions of one scalar input).
    """
    if function not in FUNCTIONS:
        raise _messages.audit_unknown_function(function, FUNCTIONS)
    name = get_format(dtype).name
    n = default_samples(function) if samples is None else samples
    _check_common(n, threshold)
    chosen = implementations(function, name, impls)
    audit = Audit(function, "function", name, n, seed, threshold)
    if impls is None:
        audit.skipped = skipped(function, name)
    processes = processes or os.cpu_count() or 1
    clock = _Clock()
    if function in _oracle.ELEMENTWISE:
        _elementwise(audit, function, chosen, bounds, processes, intervals)
    elif bounds is not None:
        raise _messages.audit_range_not_scalar(function)
    elif function in _oracle.REDUCTIONS:
        _reduction(audit, function, chosen, processes)
    elif function == "binary_cross_entropy_with_logits":
        _bce(audit, chosen, processes)
    else:
        _ce(audit, chosen, processes)
    audit.timing.update(clock.stop())
    audit.timing["processes"] = processes
    return audit


def _task_elementwise(name: str, x: np.ndarray, dtype: str, derivative: bool) -> np.ndarray:
    return _oracle.derivative(name, x, dtype) if derivative else _oracle.elementwise(name, x, dtype)


def _exact_elementwise(function: str, x: np.ndarray, dtype: str, processes: int, derivative: bool = False) -> np.ndarray:
    chunks = np.array_split(x, max(1, x.size // 250))
    parts = _oracle.parallel_map(
        _task_elementwise, [(function, c, dtype, derivative) for c in chunks], processes=processes, min_items=4
    )
    return np.concatenate(parts) if parts else np.zeros(0, dtype=get_format(dtype).storage)


def _elementwise(
    audit: Audit,
    function: str,
    chosen: list[Impl],
    bounds: tuple[float, float] | None,
    processes: int,
    intervals: bool,
    *,
    derivative: bool = False,
) -> None:
    dtype = audit.dtype
    kind = _KIND.get(function, "real")
    x = sample_scalar(dtype, audit.samples, audit.seed, bounds, kind=kind)
    t0 = time.perf_counter()
    exact = _exact_elementwise(function, x, dtype, processes, derivative)
    audit.timing["oracle_s"] = time.perf_counter() - t0
    audit.variables = ("x",)
    if bounds is not None:
        audit.ranges = {"x": bounds}
    special = ~np.isfinite(x.astype(np.float64))
    for impl in chosen:
        caller = _Caller(impl, dtype)
        col = _Collector(function if not derivative else f"d/dx {function}", dtype)
        t1 = time.perf_counter()
        got = caller(x)
        t = time.perf_counter() - t1
        if isinstance(got, np.ndarray):
            col.add(got, exact, special, lambda i: {"x": float(x[i])})
        run = _run_of(impl, caller, col, dtype, t)
        if derivative and isinstance(got, np.ndarray):
            # the collector knows value budgets only: apply the gradient budget here
            from ._budgets import budget

            b = budget(function, dtype, kind="grad")
            if b is not None:
                u = ulp_distance(got, exact, dtype)
                run.result.budget = b
                run.result.violations = int(np.sum((u > b) & ~special))
        if isinstance(got, np.ndarray):
            run.points = {"x": x.astype(np.float64), "exact": exact.astype(np.float64), "ulp": ulp_distance(got, exact, dtype)}
            if intervals:
                _find(run, impl, x, got, exact, dtype, audit, function, bounds, derivative)
        audit.runs.append(run)


def _find(
    run: Run,
    impl: Impl,
    x: np.ndarray,
    got: np.ndarray,
    exact: np.ndarray,
    dtype: str,
    audit: Audit,
    function: str,
    bounds: tuple[float, float] | None,
    derivative: bool,
) -> None:
    caller = _Caller(impl, dtype)
    caller.calls = 1  # a refusal here is not a first-call failure

    def evaluate(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = caller(xs)
        if not isinstance(g, np.ndarray):
            g = _nan_like(xs.shape, dtype)
        e = _oracle.derivative(function, xs, dtype) if derivative else _oracle.elementwise(function, xs, dtype)
        return g, e

    formula = None
    if impl.formula is not None:
        from ._expr import parse

        formula = parse(impl.formula)
    _intervals_for(run, x, got, exact, dtype, audit.threshold, evaluate, bounds, formula, "x")


def _intervals_for(
    run: Run,
    x: np.ndarray,
    got: np.ndarray,
    exact: np.ndarray,
    dtype: str,
    threshold: float,
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    bounds: tuple[float, float] | None,
    formula: Any,
    variable: str,
) -> None:
    lo, hi = bounds if bounds is not None else (None, None)
    found: list[Interval] = []
    left = 0
    for level in ("lost", "threshold"):
        # all digits lost is a clean symptom: runs bridge no good sample (x = 0 between two
        # underflowing sides stays outside); errors near the threshold are ragged: bridge a few
        ivs, n_left = find_intervals(
            x,
            got,
            exact,
            dtype,
            threshold=threshold,
            evaluate=evaluate,
            lo=lo,
            hi=hi,
            formula=formula,
            variable=variable,
            level=level,
            gap=0 if level == "lost" else 3,
        )
        found += ivs
        left += n_left
    run.intervals = found
    run.intervals_left_out = left


def _special_vector(x: np.ndarray, b: np.ndarray | None) -> bool:
    """Whether a vector's results are special values (held to exact equality).

    A NaN or ``+inf`` entry (or a non-finite weight) makes every result a documented
    special value (NaN, ``inf``, ``1/k``...).  ``-inf`` entries among finite ones do not:
    they contribute nothing, and the other results are ordinary numbers measured against
    the ULP budget (a result that is itself not finite, or a component at ``-inf``, is
    compared exactly all the same: the collector treats non-finite exact values as special).
    """
    xf = x.astype(np.float64)
    if np.isnan(xf).any() or (xf == np.inf).any():
        return True
    return b is not None and not np.isfinite(b.astype(np.float64)).all()


def _reduction(audit: Audit, function: str, chosen: list[Impl], processes: int) -> None:
    dtype = audit.dtype
    weights = function == "logsumexp"
    cases = _sampler.sample_vectors(dtype, audit.samples, audit.seed, weights=weights)
    t0 = time.perf_counter()
    refs = _oracle.parallel_map(
        _task_vector, [(c.x, c.b, dtype, function != "logsumexp") for c in cases], processes=processes
    )
    audit.timing["oracle_s"] = time.perf_counter() - t0
    from ._budgets import logsumexp_tolerance

    fmt = get_format(dtype)
    for impl in chosen:
        caller = _Caller(impl, dtype)
        col = _Collector(function, dtype)
        exact_all: list[np.ndarray] = []
        ulp_all: list[np.ndarray] = []
        t1 = time.perf_counter()
        for case, ref in zip(cases, refs, strict=True):
            if caller.failed is not None:
                break
            special = _special_vector(case.x, case.b)
            describe = (lambda c: lambda i: _vector_dict(c) | ({"component": i} if function != "logsumexp" else {}))(case)
            if function == "logsumexp":
                exact = to_storage(np.array([ref.logsumexp]), dtype)
                allowed = np.array([logsumexp_tolerance(case.x, case.b, ref.logsumexp, fmt)])
                if case.b is None:
                    got = caller(case.x)
                    sign_bad = None
                else:
                    out = caller(case.x, b=case.b, return_sign=True)
                    got, sign_bad = None, None
                    if isinstance(out, tuple):
                        got = out[0]
                        s = float(np.asarray(out[1], dtype=np.float64).ravel()[0])
                        sign_bad = np.array([not (s == ref.sign or (math.isnan(ref.sign) and math.isnan(s)))])
                    elif isinstance(out, str):
                        got = out
                if got is None:
                    continue
                if isinstance(got, str):
                    got = _nan_like(exact.shape, dtype)
                col.add(got, exact, special, describe, allowed=allowed, sign_bad=sign_bad)
            else:
                exact = to_storage(ref.softmax if function == "softmax" else ref.log_softmax, dtype)
                got = caller(case.x)
                if got is None:
                    continue
                if isinstance(got, str):
                    got = _nan_like(exact.shape, dtype)
                col.add(got, exact, special, describe)
            exact_all.append(exact.astype(np.float64).ravel())
            ulp_all.append(ulp_distance(np.asarray(got).ravel(), exact.ravel(), dtype))
        run = _run_of(impl, caller, col, dtype, time.perf_counter() - t1)
        if exact_all:
            run.points = {"exact": np.concatenate(exact_all), "ulp": np.concatenate(ulp_all)}
        audit.runs.append(run)


def _bce(audit: Audit, chosen: list[Impl], processes: int) -> None:
    dtype = audit.dtype
    batches = _sampler.sample_bce(dtype, audit.samples, audit.seed)
    t0 = time.perf_counter()
    refs = _oracle.parallel_map(_task_bce, [(b, dtype) for b in batches], processes=processes, min_items=4)
    audit.timing["oracle_s"] = time.perf_counter() - t0
    for impl in chosen:
        caller = _Caller(impl, dtype)
        col = _Collector("binary_cross_entropy_with_logits", dtype)
        exact_all: list[np.ndarray] = []
        ulp_all: list[np.ndarray] = []
        t1 = time.perf_counter()
        for batch, (none, mean, total) in zip(batches, refs, strict=True):
            if caller.failed is not None:
                break
            kw = {"weight": batch.weight, "pos_weight": batch.pos_weight}
            special_el = ~np.isfinite(batch.logits.astype(np.float64))  # limits at +-inf logits, NaN
            special = bool(np.isnan(batch.logits.astype(np.float64)).any())
            for red, ref, sp, what in (
                ("none", none, special_el, "element (reduction='none')"),
                ("mean", mean, np.array([special]), "reduction='mean'"),
                ("sum", total, np.array([special]), "reduction='sum'"),
            ):
                exact = to_storage(np.atleast_1d(np.asarray(ref, dtype=np.float64)), dtype)
                got = caller(batch.logits, batch.targets, reduction=red, **kw)
                if got is None:
                    continue
                if isinstance(got, str):
                    got = _nan_like(exact.shape, dtype)
                col.add(got, exact, sp, _loss_describe(batch, what))
                exact_all.append(exact.astype(np.float64).ravel())
                ulp_all.append(ulp_distance(np.asarray(got).ravel(), exact.ravel(), dtype))
        run = _run_of(impl, caller, col, dtype, time.perf_counter() - t1)
        if exact_all:
            run.points = {"exact": np.concatenate(exact_all), "ulp": np.concatenate(ulp_all)}
        audit.runs.append(run)


def _ce(audit: Audit, chosen: list[Impl], processes: int) -> None:
    dtype = audit.dtype
    batches = _sampler.sample_cross_entropy(dtype, audit.samples, audit.seed)
    t0 = time.perf_counter()
    refs = _oracle.parallel_map(_task_ce, [(b, dtype) for b in batches], processes=processes, min_items=4)
    audit.timing["oracle_s"] = time.perf_counter() - t0
    for impl in chosen:
        caller = _Caller(impl, dtype)
        col = _Collector("cross_entropy_with_logits", dtype)
        exact_all: list[np.ndarray] = []
        ulp_all: list[np.ndarray] = []
        t1 = time.perf_counter()
        for batch, (none, mean, total) in zip(batches, refs, strict=True):
            if caller.failed is not None:
                break
            kw: dict[str, Any] = {
                "weight": batch.weight,
                "label_smoothing": batch.label_smoothing,
                "ignore_index": batch.ignore_index,
            }
            # a row's loss is a special value when it is not finite (the collector checks those
            # exactly); finite losses of rows with infinite logits are ordinary numbers
            # (w t log k...) measured against the budget
            special_rows = np.isnan(batch.logits.astype(np.float64)).any(axis=1)
            special = bool(special_rows.any())
            for red, ref, sp, what in (
                ("none", none, special_rows, "element (row, reduction='none')"),
                ("mean", mean, np.array([special]), "reduction='mean'"),
                ("sum", total, np.array([special]), "reduction='sum'"),
            ):
                exact = to_storage(np.atleast_1d(np.asarray(ref, dtype=np.float64)), dtype)
                got = caller(batch.logits, batch.targets, reduction=red, **kw)
                if got is None:
                    continue
                if isinstance(got, str):
                    got = _nan_like(exact.shape, dtype)
                col.add(got, exact, sp, _loss_describe(batch, what))
                exact_all.append(exact.astype(np.float64).ravel())
                ulp_all.append(ulp_distance(np.asarray(got).ravel(), exact.ravel(), dtype))
        run = _run_of(impl, caller, col, dtype, time.perf_counter() - t1)
        if exact_all:
            run.points = {"exact": np.concatenate(exact_all), "ulp": np.concatenate(ulp_all)}
        audit.runs.append(run)


# ---------------------------------------------------------------- gradients


#: Reductions and losses whose gradient ``--grad`` audits (with ``_peers.GRAD_FUNCTIONS``).
VECTOR_GRADIENTS: tuple[str, ...] = (
    "logsumexp",
    "softmax",
    "log_softmax",
    "binary_cross_entropy_with_logits",
    "cross_entropy_with_logits",
)
GRADIENT_VECTOR_LENGTH = 64
"""Longest vector of a gradient audit (each Jacobian row costs one exact evaluation)."""


def grad_functions() -> tuple[str, ...]:
    """Every function ``--grad`` takes: the elementwise ones, then reductions and losses."""
    from ._peers import GRAD_FUNCTIONS

    return (*GRAD_FUNCTIONS, *VECTOR_GRADIENTS)


def audit_gradient(
    function: str,
    dtype: str,
    *,
    samples: int | None = None,
    seed: int = 0,
    impls: Sequence[str] | None = None,
    threshold: float = 1.0,
    bounds: tuple[float, float] | None = None,
    processes: int | None = None,
    intervals: bool = True,
) -> Audit:
    """Audit the gradient of `function` against mpmath.

    Elementwise functions: the derivative d/dx (implementations from
    `stablenn.audit._peers.grad_implementations`, exact values from
    `stablenn.audit._oracle.derivative`).  Reductions and losses (`VECTOR_GRADIENTS`): see
    `_vector_gradient` for what is differentiated.  Runs through JAX (``stablenn-jax``,
    ``jax``) are measured against the flushed reference (`_measure.flush`): XLA on the CPU
    flushes subnormal inputs and results to zero, so an exactly subnormal gradient may come
    back as 0 there, and a subnormal input is read as 0.
    """
    if function not in grad_functions():
        raise _messages.audit_grad_function(function, grad_functions())
    name = get_format(dtype).name
    vector = function in VECTOR_GRADIENTS
    if samples is None:
        samples = default_samples(function) if vector else DEFAULT_SAMPLES["elementwise"]
    n = samples
    _check_common(n, threshold)
    if vector:
        if name not in ("float32", "float64"):
            raise _messages.audit_impl_lacks_dtype(f"{function} gradient", name, ("float32", "float64"))
        audit = Audit(f"gradient of {function}", "gradient", name, n, seed, threshold)
        clock = _Clock()
        _vector_gradient(audit, function, impls)
        audit.timing.update(clock.stop())
        audit.timing["processes"] = 1
        return audit
    chosen, notes = grad_implementations(function, name, impls)
    chosen = [i for i in chosen if name in i.dtypes]
    audit = Audit(f"d/dx {function}", "gradient", name, n, seed, threshold)
    audit.notes += notes
    processes = processes or os.cpu_count() or 1
    clock = _Clock()
    _elementwise(audit, function, chosen, bounds, processes, intervals, derivative=True)
    audit.timing.update(clock.stop())
    audit.timing["processes"] = processes
    return audit


def _grad_callers(function: str, names: Sequence[str] | None) -> list[tuple[str, str, Callable[..., Any]]]:
    """``(name, label, fn)`` from `stablenn._autodiff.gradient_impls` (NumPy in and out)."""
    from stablenn._autodiff import gradient_impls

    rename = {"stablenn-torch": "stablenn"}
    labels = {
        "stablenn": "stablenn rule through torch.autograd",
        "stablenn-jax": "stablenn rule through jax.grad",
        "torch": "PyTorch's function, torch.autograd",
        "jax": "JAX's function, jax.grad",
    }
    out = []
    for key, fn in gradient_impls(function).items():
        name = rename.get(key, key)
        if names is not None and name not in names:
            continue
        if "jax" in name:
            import jax

            jax.config.update("jax_enable_x64", True)  # float64 gradients need 64-bit JAX
        out.append((name, labels.get(name, key), fn))
    if names is not None:
        unknown = [n for n in names if n not in {o[0] for o in out}]
        if unknown:
            raise _messages.audit_grad_function(f"{function} with --impl {','.join(unknown)}", tuple(o[0] for o in out))
    return out


def _grad_cases(function: str, dtype: str, n: int, seed: int) -> list[tuple[tuple[Any, ...], np.ndarray, dict[str, Any]]]:
    """``(arguments, exact gradient, description)`` for every case of a gradient audit.

    * ``logsumexp``: d/dx log|sum b e^x| over vectors (weights of both signs for half of
      them), where the weighted sum is not exactly 0;
    * ``softmax``, ``log_softmax``: the VJP with a one-hot cotangent ``e_k``, i.e. row ``k``
      of the Jacobian, for ``k`` the largest and the smallest entry: the gradient of one
      output, where ``s_k (1 - s_k)`` and ``1 - s_k`` cancel in every peer.  (A random
      cotangent mixes rows whose sum can cancel arbitrarily: its condition number, not the
      rule, would set the error.)
    * ``binary_cross_entropy_with_logits``: d(element loss)/d(logit), hard and soft labels;
    * ``cross_entropy_with_logits``: d(row loss)/d(logits), class index at the argmax and
      at the argmin.
    """
    cases: list[tuple[tuple[Any, ...], np.ndarray, dict[str, Any]]] = []
    if function == "binary_cross_entropy_with_logits":
        x = _sampler.sample_unary(dtype, n, seed=seed)
        x = x[np.isfinite(x.astype(np.float64))]
        y = _sampler.sample_labels(dtype, x.size, seed=seed + 1)
        exact = _oracle.bce_grad(x, y, dtype)
        for i in range(x.size):
            cases.append(((x[i : i + 1], y[i : i + 1]), exact[i : i + 1], {"x": float(x[i]), "y": float(y[i])}))
        return cases
    vectors = _sampler.sample_vectors(dtype, n, seed=seed, weights=function == "logsumexp", max_len=GRADIENT_VECTOR_LENGTH)
    for c in vectors:
        x, b = c.x, getattr(c, "b", None)
        if not np.isfinite(x.astype(np.float64)).all() or (b is not None and not np.isfinite(b.astype(np.float64)).all()):
            continue  # special values: tests/test_gradients_special.py
        if function == "logsumexp":
            if b is not None and not (b != 0).any():
                continue
            try:
                exact = _oracle.logsumexp_grad(x, dtype, b)
            except (ZeroDivisionError, ValueError, ArithmeticError):
                continue  # the weighted sum is exactly 0: no gradient
            cases.append(((x, b), exact, {"x": x.tolist(), **({} if b is None else {"b": b.tolist()})}))
            continue
        for k in sorted({int(np.argmax(x)), int(np.argmin(x))}):
            if function == "cross_entropy_with_logits":
                exact = _oracle.cross_entropy_grad(x, k, dtype)
                cases.append(((x, np.int64(k)), exact, {"x": x.tolist(), "target": k}))
            else:
                g = np.zeros_like(x)
                g[k] = 1
                ref = _oracle.softmax_vjp if function == "softmax" else _oracle.log_softmax_vjp
                cases.append(((x, g), ref(x, g, dtype), {"x": x.tolist(), "cotangent": f"e_{k}"}))
    return cases


def _vector_gradient(audit: Audit, function: str, names: Sequence[str] | None) -> None:
    from ._budgets import budget
    from ._measure import flush

    dtype = audit.dtype
    callers = _grad_callers(function, names)
    t0 = time.perf_counter()
    cases = _grad_cases(function, dtype, audit.samples, audit.seed)
    audit.timing["oracle_s"] = time.perf_counter() - t0
    b = budget(function, dtype, kind="grad")
    fmt = get_format(dtype)
    for name, label, fn in callers:
        ftz = "jax" in name
        col = _Collector(f"gradient of {function}", dtype, ftz=ftz)
        t1 = time.perf_counter()
        failed = None
        ulps = []
        for args, exact, info in cases:
            if ftz:
                args = tuple(flush(a, dtype) if isinstance(a, np.ndarray) else a for a in args)
            try:
                import warnings

                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    got = np.asarray(fn(*args)).astype(fmt.storage)
            except Exception as exc:  # a peer that raises is part of the audit
                failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
                break
            keep = np.isfinite(exact.astype(np.float64))
            col.add(got, exact, ~keep, lambda i, _info=info: _info)
            u = ulp_distance(got, exact, fmt)
            if ftz:
                u = np.minimum(u, ulp_distance(got, flush(exact, dtype), fmt))
            ulps.append(np.where(keep, u, 0.0))
        result = col.result("numpy", name, 0.0, time.perf_counter() - t1)
        run = Run(name, label, result, failed=failed)
        if b is not None and ulps:
            u_all = np.concatenate([np.ravel(u) for u in ulps])
            run.result.budget = b
            run.result.violations = int(np.sum(u_all > b))
        audit.runs.append(run)


# ---------------------------------------------------------------- formulas


def _task_exact(expr: Any, points: list[dict[str, Any]], dtype: str) -> list[Any]:
    """Correctly rounded values of `expr` at each point; None where undecided."""
    from ._expr import evaluate_exact

    out: list[Any] = []
    for p in points:
        try:
            out.append(evaluate_exact(expr, p, dtype))
        except (ValueError, ArithmeticError):
            out.append(None)
    return out


def _formula_impls(expr: Any, dtype: str) -> tuple[list[tuple[str, str, Any]], list[Any]]:
    from ._rewrites import rewrite

    stable, found = rewrite(expr)
    impls = [("formula", str(expr), expr)]
    if found:
        impls.append(("rewrite", str(stable), stable))
    return impls, found


def _eval_numpy_safe(expr: Any, values: dict[str, np.ndarray], dtype: str, n: int) -> np.ndarray:
    """`evaluate_numpy` on all points; where it raises (a primitive refusing a value), point
    by point, NaN for the points that raise (domain errors are part of the audit)."""
    from ._expr import evaluate_numpy

    try:
        return np.asarray(evaluate_numpy(expr, values, dtype))
    except (ValueError, TypeError, ArithmeticError):
        pass
    out = []
    for i in range(n):
        try:
            out.append(np.asarray(evaluate_numpy(expr, {k: v[i] for k, v in values.items()}, dtype), dtype=np.float64))
        except (ValueError, TypeError, ArithmeticError):
            out.append(np.array(np.nan))
    return np.array(out, dtype=np.float64).astype(get_format(dtype).storage)


def audit_formula(
    text: str,
    dtype: str,
    *,
    samples: int | None = None,
    seed: int = 0,
    threshold: float = 1.0,
    ranges: dict[str | None, tuple[float, float]] | None = None,
    processes: int | None = None,
    intervals: bool = True,
) -> Audit:
    """Audit a formula the user typed: as written, and its stable rewrite, in `dtype`.

    Parameters
    ----------
    text : str
        The formula (`stablenn.audit._expr.parse`).
    dtype : str
        The format the formula is evaluated in.
    samples : int, optional
        Points (default 20,000 for scalar variables, 2,000 with vector variables).
    ranges : dict, optional
        Ends per scalar variable name; the key None applies to every scalar variable.
    """
    from ._expr import evaluate_numpy, is_vector, parse, variables, vector_variables

    expr = parse(text)
    name = get_format(dtype).name
    names = variables(expr)
    if not names:
        raise _messages.audit_formula_constant(text)
    vecs = vector_variables(expr)
    scalars = tuple(v for v in names if v not in vecs)
    n = samples if samples is not None else DEFAULT_SAMPLES["vector formula" if vecs else "formula"]
    _check_common(n, threshold)
    bounds: dict[str, tuple[float, float]] = {}
    for key, (lo, hi) in (ranges or {}).items():
        targets = scalars if key is None else (key,)
        if key is not None and key not in scalars:
            raise _messages.audit_range_variable(key, scalars)
        if key is None and not scalars:
            raise _messages.audit_range_not_scalar(repr(text))
        for v in targets:
            bounds[v] = _inward(lo, hi, name, f"{key + '=' if key else ''}{lo!r}:{hi!r}")
    audit = Audit(str(expr), "formula", name, n, seed, threshold, variables=names, vector_variables=vecs, ranges=bounds)
    processes = processes or os.cpu_count() or 1
    clock = _Clock()
    fmt = get_format(name)
    # ---- inputs
    values: dict[str, np.ndarray] = {}
    for k, v in enumerate(scalars):
        values[v] = sample_scalar(name, n, seed + 101 * k, bounds.get(v))
    vector_cases: list[dict[str, np.ndarray]] = []
    if vecs:
        cases = _sampler.sample_vectors(name, n, seed, max_len=VECTOR_FORMULA_LENGTH)
        rng = np.random.default_rng([seed, 0xF0])
        for case in cases:
            point = {vecs[0]: case.x}
            for other in vecs[1:]:
                kind = case.kind.split("+")[0]
                point[other] = _sampler._vector_x(fmt, kind, case.x.size, rng)
            vector_cases.append(point)
    points: list[dict[str, Any]] = []
    for i in range(n):
        p: dict[str, Any] = {v: float(values[v][i]) for v in scalars}
        if vecs:
            p.update({v: vector_cases[i][v].astype(np.float64).tolist() for v in vecs})
        points.append(p)
    # ---- exact values, in parallel
    t0 = time.perf_counter()
    per = 20 if vecs else 100
    chunks = [points[i : i + per] for i in range(0, n, per)]
    parts = _oracle.parallel_map(_task_exact, [(expr, c, name) for c in chunks], processes=processes, min_items=2)
    exact_list = [e for part in parts for e in part]
    audit.timing["oracle_s"] = time.perf_counter() - t0
    undecided = [i for i, e in enumerate(exact_list) if e is None]
    if undecided:
        audit.notes.append(
            f"{len(undecided)} of {n} points left out: their exact value could not be rounded with certainty "
            "(it sits on a rounding boundary or next to a point where the formula is undefined)"
        )
    keep = np.array([e is not None for e in exact_list], dtype=bool)
    vector_out = bool(vecs) and is_vector(expr)
    impls, found = _formula_impls(expr, name)
    audit.rewrites = found
    for label_name, label, e in impls:
        col = _Collector(str(expr), name)
        t1 = time.perf_counter()
        exact_all: list[np.ndarray] = []
        ulp_all: list[np.ndarray] = []
        if not vecs:
            got = _eval_numpy_safe(e, {v: values[v] for v in scalars}, name, n)
            idx = np.flatnonzero(keep)
            ex = np.array([exact_list[i] for i in idx], dtype=np.float64).astype(fmt.storage)
            special = np.zeros(idx.size, dtype=bool)
            for v in scalars:
                special |= ~np.isfinite(values[v][idx].astype(np.float64))
            g = np.asarray(got).reshape(-1)[idx].astype(fmt.storage)
            col.add(g, ex, special, lambda i, idx=idx: {v: float(values[v][idx[i]]) for v in scalars})
            exact_all.append(ex.astype(np.float64))
            ulp_all.append(ulp_distance(g, ex, name))
        else:
            for i in np.flatnonzero(keep).tolist():
                point = {v: values[v][i] for v in scalars} | dict(vector_cases[i])
                ex = np.atleast_1d(np.array(exact_list[i], dtype=np.float64)).astype(fmt.storage)
                try:
                    got = evaluate_numpy(e, point, name)
                except (ValueError, TypeError, ArithmeticError):  # a primitive refusing a value: NaN
                    got = np.full(ex.shape, np.nan)
                g = np.atleast_1d(np.asarray(got)).astype(fmt.storage).reshape(-1)
                if g.size != ex.size:
                    g = np.resize(g, ex.shape)
                special = not all(np.isfinite(np.asarray(point[v], dtype=np.float64)).all() for v in point)
                describe = (lambda p: lambda j: {k: np.asarray(val, dtype=np.float64).tolist() for k, val in p.items()} | ({"component": j} if vector_out else {}))(point)
                col.add(g, ex, np.array([special]), describe)
                exact_all.append(ex.astype(np.float64))
                ulp_all.append(ulp_distance(g, ex, name))
        result = col.result("numpy", label_name, 0.0, time.perf_counter() - t1)
        run = Run(label_name, label, result)
        run.points = {"exact": np.concatenate(exact_all) if exact_all else np.zeros(0), "ulp": np.concatenate(ulp_all) if ulp_all else np.zeros(0)}
        if not vecs:
            idx = np.flatnonzero(keep)
            for v in scalars:
                run.points[v] = values[v][idx].astype(np.float64)
            if intervals and len(scalars) == 1:
                var = scalars[0]

                def evaluate(xs: np.ndarray, _e: Any = e, _var: str = var) -> tuple[np.ndarray, np.ndarray]:
                    g = _eval_numpy_safe(_e, {_var: xs}, name, xs.size)
                    ex = _task_exact(expr, [{_var: float(x)} for x in xs], name)
                    g = np.asarray(g, dtype=np.float64).reshape(-1)
                    # an undecided exact value counts as agreeing (never as a bad point)
                    return g, np.array([g[j] if v is None else v for j, v in enumerate(ex)], dtype=np.float64)

                x = values[var][idx]
                g = np.asarray(got).reshape(-1)[idx]
                _intervals_for(run, x, g, np.array([exact_list[i] for i in idx]), name, threshold, evaluate, bounds.get(var), e, var)
        audit.runs.append(run)
    if len(scalars) > 1:
        audit.notes.append("intervals are found for formulas of one scalar variable; the plot shows the error against each variable")
    audit.timing.update(clock.stop())
    audit.timing["processes"] = processes
    return audit
