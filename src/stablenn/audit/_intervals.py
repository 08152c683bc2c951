"""Where an implementation breaks: input intervals of large error, with their causes.

From the audit's samples of a function of one scalar input (each sample: the input, the
value got, the correctly rounded exact value), `find_intervals`

1. labels every sample: good, or bad with a *symptom* (`classify`): NaN where the exact
   value is a number, an infinity where it is finite, 0 where it is not, a number where
   the function is undefined, or a finite value too far off;
2. sorts the samples by input and merges runs of bad samples with the same symptom,
   bridging up to `GAP` good samples (rounding noise at the edge of a bad region makes
   single good samples appear inside it);
3. refines both ends of each run by bisection on the float's bit pattern (the ordinal of
   `stablenn.audit._ulp.ordinal`): between the last sample outside and the first inside,
   the predicate "bad with this symptom" is evaluated at the midpoint until the two are
   neighbouring floats.  Each end is then an exact float where the predicate changes:
   the interval's first (last) bad value, its neighbour outside is good;
4. names the cause: from the operations of the formula when there is one (`trace_cause`
   evaluates every sub-expression in the dtype and exactly, and blames the first
   operation that goes wrong while its operands are right: overflow, underflow,
   cancellation, NaN, rounding), otherwise from the symptom.

Two levels are reported: error above a threshold (default 1 ULP), and "all digits
lost": NaN, an infinity or 0 in place of a finite nonzero value, a number where the
function is undefined, or a relative error of 100% or more.

>>> import numpy as np
>>> from stablenn.audit._expr import parse, evaluate_numpy
>>> f = parse("sqrt(x**2)")
>>> x = np.array([-1e300, -2.0, 1e-200, 0.5, 1e160, 1e300])
>>> got = evaluate_numpy(f, {"x": x}, "float64")
>>> [CODES[c] for c in classify(got, np.abs(x), "float64", 1.0)]
['inf', 'good', 'zero', 'good', 'inf', 'inf']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._ulp import from_ordinal, get_format, ordinal, ulp_distance

__all__ = ["CODES", "GAP", "Interval", "classify", "find_intervals", "symptom_cause", "trace_cause"]

GOOD, NAN, INF, ZERO, UNDEFINED, WRONG = range(6)
CODES = ("good", "nan", "inf", "zero", "undefined", "wrong")
GAP = 2
"""Good samples a run of bad ones may bridge."""

LEVELS = ("threshold", "lost")


@dataclass
class Interval:
    """A closed interval ``[lo, hi]`` of inputs where an implementation breaks.

    Attributes
    ----------
    lo, hi : float
        Exact floats of the dtype (as Python floats): the first and last bad input found
        by bisection (their outer neighbours are not bad with this symptom).
    cause : str
        ``overflow``, ``underflow``, ``cancellation``, ``NaN``, ``rounding`` (error of
        one operation, or a library function, above the threshold), ``undefined`` (a
        number where the function has none); for implementations without a formula,
        ``returns 0`` or ``inaccurate`` where the symptom does not say why.
    max_ulp : float
        Largest ULP error seen inside (samples and bisection probes).
    level : str
        ``"threshold"`` (error above the threshold) or ``"lost"`` (all digits lost).
    where : str or None
        The sub-expression that goes wrong first (formulas only).
    samples, bad : int
        Samples inside the interval, and how many of them are bad.
    """

    lo: float
    hi: float
    cause: str
    max_ulp: float
    level: str
    where: str | None = None
    samples: int = 0
    bad: int = 0
    symptom: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "lo": self.lo,
            "hi": self.hi,
            "lo_hex": float(self.lo).hex(),
            "hi_hex": float(self.hi).hex(),
            "cause": self.cause,
            "max_ulp": self.max_ulp,
            "level": self.level,
            "where": self.where,
            "samples": self.samples,
            "bad_samples": self.bad,
        }

    def describe(self) -> str:
        where = f" in {self.where}" if self.where else ""
        lost = "all digits lost" if self.level == "lost" else "above threshold"
        return f"[{self.lo!r}, {self.hi!r}]  {self.cause}{where}  ({lost}; max {_fmt(self.max_ulp)} ULP)"


def _fmt(u: float) -> str:
    return "inf" if math.isinf(u) else f"{u:.3g}"


# ---------------------------------------------------------------- symptoms


def classify(got: Any, exact: Any, dtype: Any, threshold: float, *, level: str = "threshold") -> np.ndarray:
    """A symptom code per sample (`CODES`): 0 when good at this `level`.

    ``threshold`` level: bad when the ULP error exceeds `threshold`.  ``lost`` level: bad
    when every digit is lost (NaN, an infinity, 0, or a number where undefined, in place
    of the exact value; or a relative error of at least 1).
    """
    fmt = get_format(dtype)
    g = np.asarray(got, dtype=np.float64).ravel()
    e = np.asarray(exact, dtype=np.float64).ravel()
    ulps = ulp_distance(g.astype(fmt.storage) if fmt.name != "bfloat16" else g.astype(np.float32), e.astype(fmt.storage), fmt)
    g_nan, e_nan = np.isnan(g), np.isnan(e)
    codes = np.zeros(g.shape, dtype=np.int8)
    with np.errstate(invalid="ignore", over="ignore"):
        wrong = ulps > threshold if level == "threshold" else (
            (np.abs(g - e) >= np.abs(e)) | (np.sign(g) != np.sign(e))
        ) & (ulps > 0)
        codes[wrong & ~g_nan & ~e_nan] = WRONG
        codes[(g == 0) & (e != 0) & ~e_nan] = ZERO
        codes[np.isinf(g) & (g != e) & ~e_nan] = INF
    codes[g_nan & ~e_nan] = NAN
    codes[e_nan & ~g_nan] = UNDEFINED
    if level == "threshold":
        codes[ulps <= threshold] = GOOD
    return codes


def symptom_cause(code: int, exact: float, dtype: Any) -> str:
    """The cause named from a symptom alone (no formula to trace)."""
    fmt = get_format(dtype)
    if code == NAN:
        return "NaN"
    if code == INF:
        return "overflow" if math.isfinite(exact) else "inaccurate"
    if code == ZERO:
        return "underflow" if abs(exact) < fmt.tiny else "returns 0"
    if code == UNDEFINED:
        return "undefined"
    return "inaccurate"


# ---------------------------------------------------------------- naming the cause from a formula


def _nodes(expr: Any) -> list[Any]:
    """Sub-expressions in post-order (operands before the operation)."""
    from ._expr import _children

    out: list[Any] = []

    def walk(e: Any) -> None:
        for c in _children(e):
            walk(c)
        out.append(e)

    walk(expr)
    return out


def trace_cause(expr: Any, point: dict[str, float], dtype: Any, threshold: float = 1.0) -> tuple[str, str] | None:
    """Name the operation of `expr` that goes wrong first at `point`, and how.

    Every sub-expression is evaluated in `dtype` (as the program does, from the exact
    inputs) and with mpmath at high precision.  An operation is *flagged* when its value
    in `dtype` is NaN where the exact one is not, infinite where the exact one is finite
    (overflow), 0 where the exact one is not, inexact in the subnormal range (underflow),
    or more than `threshold` ULP from the correctly rounded exact value.  The culprit is
    the first flagged operation whose operands are not flagged; its kind and symptom
    give the cause: ``NaN``, ``overflow``, ``cancellation`` (a sum, difference or
    logarithm of correctly computed operands that loses digits: ``log(1 + tiny)``),
    ``underflow``, or ``rounding`` (one operation's own error, or its amplification).

    Returns ``(cause, sub-expression)``, or None when nothing is flagged (formulas with
    vector variables are not traced).

    >>> from stablenn.audit._expr import parse
    >>> trace_cause(parse("log(1 + exp(x))"), {"x": -20.0}, "float32")
    ('cancellation', 'log(1 + exp(x))')
    >>> trace_cause(parse("1/(1 + exp(-x))"), {"x": -95.0}, "float32")
    ('overflow', 'exp(-x)')
    >>> trace_cause(parse("sqrt(x**2)"), {"x": 1e-200}, "float64")
    ('underflow', 'x**2')
    """
    import mpmath

    from ._expr import Binary, Call, evaluate_mpmath, evaluate_numpy, vector_variables
    from ._ulp import round_mpf

    if vector_variables(expr):
        return None
    fmt = get_format(dtype)
    values = {k: np.asarray(v, dtype=fmt.storage) for k, v in point.items()}
    exact_in = {k: float(np.asarray(v, dtype=np.float64)) for k, v in values.items()}
    flagged: dict[int, bool] = {}
    prec = max(256, 8 * fmt.precision)
    for node in _nodes(expr):
        try:
            got = float(np.asarray(evaluate_numpy(node, values, fmt.name), dtype=np.float64))
        except (ValueError, TypeError, ArithmeticError):
            got = math.nan
        try:
            ex = evaluate_mpmath(node, exact_in, prec=prec)
        except (ValueError, TypeError, ArithmeticError):
            ex = mpmath.mpf("nan")
        ex_nan = bool(mpmath.isnan(ex))
        ex_finite = bool(mpmath.isfinite(ex))
        rounded = math.nan if ex_nan else round_mpf(ex, fmt)
        if math.isnan(got):
            bad, kind = not ex_nan, "NaN"
        elif ex_nan:
            bad, kind = True, "undefined"
        elif math.isinf(got) and ex_finite:
            bad, kind = True, "overflow"
        elif got == 0 and ex != 0:
            bad, kind = True, "zero"
        elif ex_finite and 0 < abs(ex) < fmt.tiny and mpmath.mpf(got) != ex:
            bad, kind = True, "underflow"
        else:
            ulps = float(ulp_distance(np.float64(got).astype(fmt.storage), np.float64(rounded).astype(fmt.storage), fmt))
            bad, kind = ulps > threshold, "rounding"
        children_bad = any(flagged.get(id(c), False) for c in _kids(node))
        flagged[id(node)] = bad
        if bad and not children_bad:
            cancels = (isinstance(node, Binary) and node.op in "+-") or (isinstance(node, Call) and node.name in ("log",))
            if kind == "NaN":
                cause = "NaN"
            elif kind == "overflow":
                cause = "overflow"
            elif kind == "undefined":
                cause = "undefined"
            elif cancels:
                cause = "cancellation"
            elif kind in ("zero", "underflow"):
                cause = "underflow"
            else:
                cause = "rounding"
            return cause, str(node)
    return None


def _kids(node: Any) -> tuple[Any, ...]:
    from ._expr import _children

    return _children(node)


# ---------------------------------------------------------------- finding intervals


Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _runs(codes: np.ndarray, gap: int) -> list[tuple[int, int, int]]:
    """Runs ``(code, first, last)`` of equal nonzero codes bridging up to `gap` zeros."""
    runs: list[tuple[int, int, int]] = []
    cur = None  # [code, first, last]
    good = 0
    for i, c in enumerate(codes.tolist()):
        if c == GOOD:
            good += 1
            if cur is not None and good > gap:
                runs.append((cur[0], cur[1], cur[2]))
                cur = None
            continue
        if cur is not None and c == cur[0]:
            cur[2] = i
        else:
            if cur is not None:
                runs.append((cur[0], cur[1], cur[2]))
            cur = [c, i, i]
        good = 0
    if cur is not None:
        runs.append((cur[0], cur[1], cur[2]))
    return runs


def _bisect(o_out: int, o_in: int, predicate: Callable[[int], tuple[bool, float]], probes: list[float]) -> int:
    """The ordinal next to `o_out` on the way to `o_in` where `predicate` first holds.

    ``predicate(o_out)`` is false and ``predicate(o_in)`` true; the result ``r`` has
    ``predicate(r)`` true and its neighbour towards `o_out` false.
    """
    while abs(o_in - o_out) > 1:
        mid = (o_out + o_in) // 2
        ok, u = predicate(mid)
        if ok:
            o_in = mid
            probes.append(u)
        else:
            o_out = mid
    return o_in


def find_intervals(
    x: Any,
    got: Any,
    exact: Any,
    dtype: Any,
    *,
    threshold: float = 1.0,
    evaluate: Evaluate | None = None,
    lo: float | None = None,
    hi: float | None = None,
    formula: Any = None,
    variable: str = "x",
    level: str = "threshold",
    gap: int = GAP,
    limit: int = 12,
) -> tuple[list[Interval], int]:
    """The intervals of inputs where an implementation's error is bad at `level`.

    Parameters
    ----------
    x, got, exact : array_like
        The sampled inputs, the implementation's results and the correctly rounded exact
        values (values of `dtype`).  Non-finite inputs are left out.
    dtype : str or dtype
        The format.
    threshold : float
        ULP error above which a sample is bad (``threshold`` level).
    evaluate : callable, optional
        ``evaluate(xs) -> (got, exact)`` at new inputs (values of `dtype`): refines the
        ends by bisection.  Without it the ends are the extreme bad samples.
    lo, hi : float, optional
        The ends of the input domain sampled (default: the largest finite values).
    formula : Expr, optional
        The implementation's formula: names the cause by `trace_cause`.
    variable : str
        The formula's variable.
    level : {"threshold", "lost"}
        Error above `threshold`, or all digits lost.
    gap : int
        Good samples a run of bad samples bridges.
    limit : int
        Intervals kept (those with the most bad samples); the count left out is returned.

    Returns
    -------
    (list of Interval, int)
        The intervals in increasing order, and how many more were found and left out.
    """
    fmt = get_format(dtype)
    xf = np.asarray(x, dtype=np.float64).ravel()
    gf = np.asarray(got, dtype=np.float64).ravel()
    ef = np.asarray(exact, dtype=np.float64).ravel()
    keep = np.isfinite(xf)
    xf, gf, ef = xf[keep], gf[keep], ef[keep]
    if xf.size == 0:
        return [], 0
    o = ordinal(xf.astype(fmt.storage), fmt)
    order = np.argsort(o, kind="stable")
    o, xf, gf, ef = o[order], xf[order], gf[order], ef[order]
    codes = classify(gf, ef, fmt, threshold, level=level)
    ulps = ulp_distance(gf.astype(fmt.storage), ef.astype(fmt.storage), fmt)
    o_lo = int(ordinal(np.array([-fmt.max if lo is None else lo], dtype=fmt.storage), fmt)[0])
    o_hi = int(ordinal(np.array([fmt.max if hi is None else hi], dtype=fmt.storage), fmt)[0])
    runs = _runs(codes, gap)
    if not runs:
        return [], 0
    # keep the runs with the most bad samples (ties: the largest error)
    def weight(r: tuple[int, int, int]) -> tuple[int, float]:
        seg = codes[r[1] : r[2] + 1]
        return int(np.sum(seg == r[0])), float(np.max(ulps[r[1] : r[2] + 1]))

    ranked = sorted(runs, key=weight, reverse=True)
    chosen = sorted(ranked[:limit], key=lambda r: r[1])
    left_out = len(runs) - len(chosen)
    cache: dict[int, tuple[int, float]] = {}

    def code_at(ords: list[int]) -> None:
        todo = [q for q in ords if q not in cache]
        if not todo or evaluate is None:
            return
        xs = from_ordinal(np.array(todo, dtype=np.int64), fmt)
        g, e = evaluate(xs)
        c = classify(g, e, fmt, threshold, level=level)
        u = ulp_distance(np.asarray(g).astype(fmt.storage), np.asarray(e).astype(fmt.storage), fmt)
        for q, ci, ui in zip(todo, c.tolist(), np.atleast_1d(u).tolist(), strict=True):
            cache[q] = (ci, ui)

    out: list[Interval] = []
    for code, first, last in chosen:
        probes: list[float] = []

        def predicate(q: int, _code: int = code) -> tuple[bool, float]:
            code_at([q])
            ci, ui = cache[q]
            return ci == _code, ui

        lo_o, hi_o = int(o[first]), int(o[last])
        if evaluate is not None:
            # outward from the run: towards the previous sample (or the domain's end)
            outer = int(o[first - 1]) if first > 0 else o_lo
            if outer != lo_o:
                ok, u = predicate(outer)
                if ok and first == 0:
                    lo_o = outer
                    probes.append(u)
                elif not ok:
                    lo_o = _bisect(outer, lo_o, predicate, probes)
            outer = int(o[last + 1]) if last + 1 < o.size else o_hi
            if outer != hi_o:
                ok, u = predicate(outer)
                if ok and last + 1 == o.size:
                    hi_o = outer
                    probes.append(u)
                elif not ok:
                    hi_o = _bisect(outer, hi_o, predicate, probes)
        seg = slice(first, last + 1)
        inside = codes[seg] == code
        max_ulp = float(max([float(np.max(ulps[seg][inside]))] + probes))
        worst = first + int(np.argmax(np.where(inside, ulps[seg], -1.0)))
        cause, where = None, None
        if formula is not None:
            try:
                traced = trace_cause(formula, {variable: float(xf[worst])}, fmt, threshold)
            except (ValueError, TypeError, ArithmeticError):  # pragma: no cover - defensive
                traced = None
            if traced is not None:
                cause, where = traced
        if cause is None:
            cause = symptom_cause(code, float(ef[worst]), fmt)
        lo_v, hi_v = (float(v) for v in from_ordinal(np.array([lo_o, hi_o], dtype=np.int64), fmt).astype(np.float64))
        out.append(
            Interval(lo_v, hi_v, cause, max_ulp, level, where, samples=last - first + 1, bad=int(inside.sum()), symptom=CODES[code])
        )
    return _merge(out, fmt), left_out


def _merge(intervals: list[Interval], fmt: Any) -> list[Interval]:
    """Join neighbouring intervals (no float between them) with the same cause."""
    out: list[Interval] = []
    for iv in intervals:
        if out:
            prev = out[-1]
            gap = int(ordinal(np.array([iv.lo], dtype=fmt.storage), fmt)[0]) - int(
                ordinal(np.array([prev.hi], dtype=fmt.storage), fmt)[0]
            )
            if gap <= 1 and prev.cause == iv.cause and prev.where == iv.where:
                out[-1] = Interval(
                    prev.lo,
                    max(prev.hi, iv.hi),
                    prev.cause,
                    max(prev.max_ulp, iv.max_ulp),
                    prev.level,
                    prev.where,
                    prev.samples + iv.samples,
                    prev.bad + iv.bad,
                    prev.symptom,
                )
                continue
        out.append(iv)
    return out
