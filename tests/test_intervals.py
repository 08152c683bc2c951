"""The interval finder against intervals derived by hand.

Each expected interval below is derived in its comment from the rounding rules of IEEE
754 (round to nearest, ties to even) and the formula's operations in the dtype; the end
points are then computed from those conditions with mpmath at 400 bits (never by
stablenn, never by a peer).  Only the "all digits lost" level is compared: its edges are
sharp (an operation overflows, underflows or absorbs), whereas where a formula crosses
1 ULP depends on the rounding of every intermediate and is ragged.

Notation: for float32, p = 24, the largest finite value is M = 2**128 - 2**104, and
``exp(x)`` (or any operation) overflows to inf exactly when its exact result reaches the
midpoint ``2**128 - 2**103`` between M and 2**128 (the tie rounds to the even
neighbour, 2**128, which is inf).  A positive exact result rounds to 0 when it is at most
half the smallest subnormal, ``2**-150`` (the tie at exactly 2**-150 goes to the even
neighbour 0).  For float64: p = 53, ``2**1024 - 2**970`` and ``2**-1075``.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from stablenn.audit import _engine, _intervals
from stablenn.audit._expr import parse

mpmath.mp.prec = 400

SAMPLES = 3000

_F = {
    "float32": (np.float32, 24, 128, 150),  # type, p, overflow exponent, 2**-(emin - p + 2)
    "float64": (np.float64, 53, 1024, 1075),
}


def _floats_near(v: mpmath.mpf, dtype: str) -> list[float]:
    t = _F[dtype][0]
    c = t(float(v))
    out = [c]
    for _ in range(3):
        out.append(np.nextafter(out[-1], t(np.inf)))
        out.insert(0, np.nextafter(out[0], t(-np.inf)))
    return [float(a) for a in out]


def smallest_above(v: mpmath.mpf, dtype: str, *, strict: bool = False) -> float:
    """The smallest float of `dtype` that is >= v (> v when strict), by exact comparison."""
    for c in _floats_near(v, dtype):
        if (mpmath.mpf(c) > v) if strict else (mpmath.mpf(c) >= v):
            return c
    raise AssertionError(v)


def largest_below(v: mpmath.mpf, dtype: str) -> float:
    """The largest float of `dtype` that is <= v, by exact comparison."""
    for c in reversed(_floats_near(v, dtype)):
        if mpmath.mpf(c) <= v:
            return c
    raise AssertionError(v)


def _largest(dtype: str) -> float:
    return float(np.finfo(_F[dtype][0]).max)


def _lost(audit: _engine.Audit, name: str) -> list[tuple[float, float, str, str | None]]:
    run = audit.run(name)
    return [(iv.lo, iv.hi, iv.cause, iv.where) for iv in run.intervals if iv.level == "lost"]


# ---------------------------------------------------------------- naive softplus, log(1 + exp(x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_naive_softplus_intervals(dtype: str) -> None:
    _, p, over, under = _F[dtype]
    # Overflow: exp(x) is inf once e**x >= 2**over - 2**(over - p - 1), i.e. from
    #   x >= log(2**over - 2**(over-p-1))   (float32: mpmath.log(2**128 - 2**103) = 88.7228390...)
    # so the first bad float is the smallest one >= that; log(inf) = inf up to the largest
    # finite input, the end of the sampled domain.
    over_lo = smallest_above(mpmath.log(mpmath.mpf(2) ** over - mpmath.mpf(2) ** (over - p - 1)), dtype)
    # All digits lost below: 1 + fl(exp(x)) rounds to 1 when fl(exp(x)) <= 2**-p (ties to
    # even at 2**-p), i.e. when e**x is at most the midpoint 2**-p + 2**-(2p) above 2**-p:
    #   x <= log(2**-p + 2**-2p)   (float32: -16.6355322...); then log(1) = 0.
    # The exact softplus(x) = log1p(e**x) is still nonzero in the dtype while it exceeds
    # 2**-under: x > log(expm1(2**-under))   (float32: -103.972077...).
    lost_lo = smallest_above(mpmath.log(mpmath.expm1(mpmath.mpf(2) ** -under)), dtype, strict=True)
    lost_hi = largest_below(mpmath.log(mpmath.mpf(2) ** -p + mpmath.mpf(2) ** (-2 * p)), dtype)
    audit = _engine.audit_function("softplus", dtype, samples=SAMPLES, impls=["naive"], processes=1)
    assert _lost(audit, "naive") == [
        (lost_lo, lost_hi, "cancellation", "log(1 + exp(x))"),
        (over_lo, _largest(dtype), "overflow", "exp(x)"),
    ]
    if dtype == "float32":  # the numbers the issue quotes, for the reader
        assert (lost_hi, over_lo) == (-16.63553237915039, 88.72283935546875)


# ---------------------------------------------------------------- naive sigmoid, 1/(1 + exp(-x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_naive_sigmoid_intervals(dtype: str) -> None:
    _, p, over, under = _F[dtype]
    # exp(-x) overflows once -x >= log(2**over - 2**(over-p-1)); then 1/(1 + inf) = 0:
    #   hi = the largest float <= -log(2**over - 2**(over-p-1))   (float32: -88.7228390...).
    # Above that, 1/(1 + e) >= 2**-over is never rounded to 0, and for x >= 0 the result
    # rounds near 1 as the exact value does: no other input loses every digit.
    # The exact sigmoid(x) rounds to 0 while sigmoid(x) <= 2**-under, i.e.
    #   x <= log(2**-under / (1 - 2**-under)) = -log(2**under - 1)  (float32: -103.972077...),
    # so lo = the smallest float above that.
    hi = largest_below(-mpmath.log(mpmath.mpf(2) ** over - mpmath.mpf(2) ** (over - p - 1)), dtype)
    lo = smallest_above(-mpmath.log(mpmath.mpf(2) ** under - 1), dtype, strict=True)
    audit = _engine.audit_function("sigmoid", dtype, samples=SAMPLES, impls=["naive"], processes=1)
    assert _lost(audit, "naive") == [(lo, hi, "overflow", "exp(-x)")]
    if dtype == "float64":
        assert (lo, hi) == (-745.1332191019411, -709.7827128933841)


# ---------------------------------------------------------------- sqrt(x**2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sqrt_of_square_intervals(dtype: str) -> None:
    _, p, over, under = _F[dtype]
    two = mpmath.mpf(2)
    # x**2 overflows once x**2 >= 2**over - 2**(over-p-1): |x| >= sqrt(2**over - 2**(over-p-1)),
    # which is 2**(over/2) (1 - 2**-(p+2) - ...): the float below 2**(over/2) is
    # 2**(over/2) (1 - 2**-p), smaller, so the first bad float is exactly 2**(over/2)
    # (float32: 2**64 = 1.8446744073709552e19; float64: 2**512 = 1.3407807929942597e154).
    big = smallest_above(mpmath.sqrt(two**over - two ** (over - p - 1)), dtype)
    assert big == 2.0 ** (over // 2)
    # x**2 rounds to 0 while x**2 <= 2**-under (ties to even at 2**-under, reached by
    # x = 2**-75 in float32): |x| <= 2**(-under/2); then sqrt(0) = 0 while |x| > 0 is exact.
    # (float64: the largest double <= 2**-537.5 = 1.5717277847026288e-162.)
    small = largest_below(two ** (mpmath.mpf(-under) / 2), dtype)
    tiny = float(np.finfo(_F[dtype][0]).smallest_subnormal)
    m = _largest(dtype)
    bounds = (-1e300, 1e300) if dtype == "float64" else None
    audit = _engine.audit_formula(
        "sqrt(x**2)", dtype, samples=SAMPLES, ranges={None: bounds} if bounds else None, processes=1
    )
    lo_end, hi_end = (-1e300, 1e300) if bounds else (-m, m)
    assert _lost(audit, "formula") == [
        (lo_end, -big, "overflow", "x**2"),
        (-small, -tiny, "underflow", "x**2"),
        (tiny, small, "underflow", "x**2"),
        (big, hi_end, "overflow", "x**2"),
    ]
    # the rewrite abs(x) is exact everywhere: no interval at all
    assert audit.run("rewrite").intervals == []
    assert audit.run("rewrite").result.max_ulp == 0


# ---------------------------------------------------------------- the pieces


def test_runs_merge_bridged_gaps_and_split_on_symptom() -> None:
    codes = np.array([0, 5, 5, 0, 5, 0, 0, 0, 5, 3, 3, 0], dtype=np.int8)
    assert _intervals._runs(codes, 1) == [(5, 1, 4), (5, 8, 8), (3, 9, 10)]
    assert _intervals._runs(codes, 0) == [(5, 1, 2), (5, 4, 4), (5, 8, 8), (3, 9, 10)]


def test_bisection_finds_the_exact_transition() -> None:
    # predicate: ordinal >= 1000 (a step); from outside 3 and inside 5000
    probes: list[float] = []
    assert _intervals._bisect(3, 5000, lambda q: (q >= 1000, 1.0), probes) == 1000
    assert _intervals._bisect(9000, 5, lambda q: (q <= 1234, 1.0), probes) == 1234


def test_classify_symptoms() -> None:
    got = np.array([np.nan, np.inf, 0.0, 1.0, 2.0, 1.0000000000000002, 5.0])
    exact = np.array([1.0, 1.0, 1e-300, np.nan, 1.0, 1.0, 5.0])
    thr = _intervals.classify(got, exact, "float64", 1.0)
    lost = _intervals.classify(got, exact, "float64", 1.0, level="lost")
    names = _intervals.CODES
    assert [names[c] for c in thr] == ["nan", "inf", "zero", "undefined", "wrong", "good", "good"]
    # 2.0 for 1.0 is a relative error of 100%: every digit lost; one ULP is not
    assert [names[c] for c in lost] == ["nan", "inf", "zero", "undefined", "wrong", "good", "good"]


def test_trace_names_the_operation() -> None:
    # log(1 + exp(x)) at x = -20 in float32: 1 + e**-20 rounds to 1 (e**-20 < 2**-24), then
    # log(1) = 0 though the exact value is 2.06e-9: the log of a correctly rounded operand
    # loses everything (cancellation).
    assert _intervals.trace_cause(parse("log(1 + exp(x))"), {"x": -20.0}, "float32") == ("cancellation", "log(1 + exp(x))")
    # (exp(x) - 1)/x at 1e-10 in float64: exp rounds to 1 + 1e-10 (good), the difference
    # cancels most of its digits
    assert _intervals.trace_cause(parse("(exp(x) - 1)/x"), {"x": 1e-10}, "float64") == ("cancellation", "exp(x) - 1")
    # exp(v)/sum(exp(v)) has a vector variable: not traced
    assert _intervals.trace_cause(parse("exp(v)/sum(exp(v))"), {"v": 1.0}, "float64") is None
    assert math.isinf(_intervals.Interval(0.0, 1.0, "overflow", math.inf, "lost").to_dict()["max_ulp"])
