"""The building blocks of the CPU fast paths against mpmath: tables, exp, log1p, rescaling.

Each bound tested here is the one ``stablenn/_fast/cpu/_jit.py`` states and the error
analysis of ``docs/performance.md`` uses.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from stablenn._fast.cpu import _jit as J
from stablenn.audit._ulp import ulp_distance

mpmath.mp.prec = 300


def _rel(got: mpmath.mpf, exact: mpmath.mpf) -> float:
    return float(abs(got - exact) / abs(exact))


def test_exp_table_is_correctly_rounded_double_double():
    for j in range(J._EXP_N):
        exact = mpmath.power(2, mpmath.mpf(j) / J._EXP_N)  # mpmath.power(2, j/128)
        assert J._EXP_T_HI[j] == float(exact)
        assert J._EXP_T_LO[j] == float(exact - mpmath.mpf(J._EXP_T_HI[j]))


def test_log_table():
    for j in range(J._LOG_N + 1):
        inv = J._LOG_INV[j]
        assert inv * 512 == round(inv * 512)  # 9 fractional bits: t = s*inv - 1 is exact
        assert abs(inv * (1 + j / J._LOG_N) - 1) <= 2.0**-9
        exact = -mpmath.log(mpmath.mpf(inv))
        assert J._LOG_T_HI[j] == float(exact)
        assert J._LOG_T_LO[j] == float(exact - mpmath.mpf(J._LOG_T_HI[j]))


def test_reduction_constants():
    ln2 = mpmath.log(2)
    assert mpmath.mpf(J._C_HI) + mpmath.mpf(J._C_LO) - ln2 / 128 < mpmath.mpf(2) ** -95
    assert float(mpmath.mpf(J._C_HI) * 2**40) == round(J._C_HI * 2**40)  # 33 bits: k*C_HI exact
    assert abs(mpmath.mpf(J._LN2_1) + J._LN2_2 + J._LN2_3 - ln2) < mpmath.mpf(2) ** -120
    assert J._INV_C == float(128 / ln2)


def _exp_points(rng: np.random.Generator) -> np.ndarray:
    return np.concatenate(
        [
            -rng.random(1500) * 708.0,  # normal results
            -np.exp(rng.uniform(-60, 0, 500)),  # near 0: r tiny
            -(rng.random(300) * 37.0 + 708.0),  # subnormal results
            [0.0, -0.0, -1e-300, -708.3964185322641, -745.1332191019411, -745.14, -746.0, -800.0, -np.inf],
        ]
    )


def test_exp_dd_within_2_to_minus_59():
    rng = np.random.default_rng(0)
    worst = 0.0
    for d in _exp_points(rng):
        hi, lo = J._exp_dd(float(d))
        exact = mpmath.exp(mpmath.mpf(float(d)))
        if float(exact) >= 2.0**-960:  # low part normal too: the pair is accurate to 2**-59
            worst = max(worst, _rel(mpmath.mpf(hi) + mpmath.mpf(lo), exact))
        # the high part alone is a faithful rounding everywhere, subnormals included
        assert ulp_distance(np.array([hi]), np.array([float(exact)]), "float64")[0] <= 1
    assert worst < 2.0**-59


def test_exp_dd_nan_and_inf():
    assert all(math.isnan(v) for v in J._exp_dd(math.nan))
    assert J._exp_dd(-math.inf) == (0.0, 0.0)


def test_exp_f_within_2_to_minus_40():
    rng = np.random.default_rng(1)
    worst = 0.0
    for d in _exp_points(rng):
        got = J._exp_f(float(d))
        exact = mpmath.exp(mpmath.mpf(float(d)))
        if float(exact) >= 2.0**-1000:
            worst = max(worst, _rel(mpmath.mpf(got), exact))
    assert worst < 2.0**-40


def test_log1p_dd_within_2_to_minus_59():
    rng = np.random.default_rng(2)
    points = np.concatenate(
        [rng.random(1500), np.exp(rng.uniform(-745, 0, 800)), [0.0, 5e-324, 2.0**-53, 2.0**-52, 1 / 512, 1.0]]
    )
    worst = 0.0
    for e in points:
        hi, lo = J._log1p_dd(float(e))
        exact = mpmath.log1p(mpmath.mpf(float(e)))
        if e == 0:
            assert hi == 0.0 and lo == 0.0
            continue
        worst = max(worst, _rel(mpmath.mpf(hi) + mpmath.mpf(lo), exact))
        assert abs(lo) <= abs(hi) * 2.0**-52 or hi == 0  # normalised pair
    assert worst < 2.0**-59


def test_exp_acc_double_double_argument():
    # the rescaling factor exp(dh + dl) of a running sum: error far below 2**-90, so that
    # tens of thousands of rescalings (sorted input) add nothing visible
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(300):
        a = float(-rng.random() * 650)
        b = float(rng.standard_normal() * 20)
        dh, dl = J._two_sum(a, -abs(b))  # normal results; below -800 the factor is 0
        hi, lo = J._exp_acc(dh, dl)
        exact = mpmath.exp(mpmath.mpf(dh) + mpmath.mpf(dl))
        worst = max(worst, _rel(mpmath.mpf(hi) + mpmath.mpf(lo), exact))
    assert worst < 2.0**-90
    assert J._exp_acc(-900.0, 0.0) == (0.0, 0.0)
    assert J._exp_acc(0.0, 0.0) == (1.0, 0.0)


@pytest.mark.parametrize("a,b", [(1.0, 2.0**-60), (1e300, -3.0), (-0.1, 0.1 + 2.0**-56), (5e-324, 1.0)])
def test_error_free_transformations(a, b):
    s, e = J._two_sum(a, b)
    assert mpmath.mpf(s) + mpmath.mpf(e) == mpmath.mpf(a) + mpmath.mpf(b)
    p, q = J._dd_mul(a, 0.0, b, 0.0)
    if math.isfinite(p) and abs(p) > 2.0**-960:
        assert _rel(mpmath.mpf(p) + mpmath.mpf(q), mpmath.mpf(a) * mpmath.mpf(b)) < 2.0**-100


def test_log_of_a_sum_in_double_double():
    # L = log(c + r) of the log-sum-exp state: log1p of r itself for one maximum, the
    # double-double log otherwise (r is stored scaled by 2**600)
    rng = np.random.default_rng(4)
    cases = [(1.0, float(r), 0.0) for r in np.exp(rng.uniform(-700, 0, 200))]
    cases += [(float(c), float(r), float(r) * 2.0**-60) for c, r in zip(rng.integers(1, 50, 200), rng.random(200) * 1e4)]
    worst = 0.0
    for c, r, rl in cases:
        h, l = J._log_cr(c, r * 2.0**600, rl * 2.0**600)
        rest = mpmath.mpf(r) + mpmath.mpf(rl)
        exact = mpmath.log1p(rest) if c == 1 else mpmath.log(mpmath.mpf(c) + rest)
        worst = max(worst, _rel(mpmath.mpf(h) + mpmath.mpf(l), exact))
    assert worst < 2.0**-57


def test_reciprocals_by_newton():
    d = np.concatenate([np.linspace(1.0, 2.0, 1001), np.nextafter(2.0, 0.0) * np.ones(1)])
    for steps, bound in ((2, 2.0**-16), (3, 2.0**-32), (4, 2.0**-52)):
        worst = max(_rel(mpmath.mpf(J._recip12(float(v), steps)), 1 / mpmath.mpf(float(v))) for v in d)
        assert worst < bound, steps
    worst = max(_rel(mpmath.mpf(J._recip14(float(2 * v))), 1 / mpmath.mpf(float(2 * v))) for v in d)
    assert worst < 2.0**-52


def test_log1p_for_float32_results_within_2_to_minus_50():
    rng = np.random.default_rng(6)
    points = np.concatenate([rng.random(1500), np.exp(rng.uniform(-745, 0, 800)), [5e-324, 2.0**-53, 1 / 512, 1.0]])
    worst = max(_rel(mpmath.mpf(J._log1p_f(float(e))), mpmath.log1p(mpmath.mpf(float(e)))) for e in points)
    assert worst < 2.0**-50
    assert J._log1p_f(0.0) == 0.0
