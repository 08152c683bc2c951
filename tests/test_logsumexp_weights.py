"""logsumexp with weights ``b`` of both signs: exact cancellations, survivors of cancelled
pairs, and near cancellations within the bound of the weighted condition number.

Truth comes from the mpmath oracle of ``stablenn.audit`` (it groups equal ``x`` and sums
their weights exactly, so an exact cancellation is ``-inf`` with sign 0); the allowance from
``stablenn.audit._budgets.logsumexp_tolerance``, which adds ``c u**2 kappa_b`` for weights of
both signs (``kappa_b = sum|b e^x| / |sum b e^x|``) to the budget of 2 ULP in float64 and
1 ULP in the narrower dtypes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import stablenn as snn
from stablenn.audit import _budgets, _oracle, _sampler
from stablenn.audit._ulp import to_storage

# every distinct x has weights summing to exactly 0: the sum is exactly 0
EXACT_ZERO = [
    ([-0.25, -0.25, 0.5, 0.5], [1.0, -1.0, -1.0, 1.0]),
    ([0.5, -0.25, 0.5, -0.25], [1.0, -1.0, -1.0, 1.0]),  # the pairs are not neighbours
    ([3.0, 1.0, 2.0, 1.0, 3.0, 2.0], [2.0, 0.5, -1.0, -0.5, -2.0, 1.0]),
    ([7.0, 7.0, 7.0, -1.0, -1.0], [0.5, 0.25, -0.75, 1e-300, -1e-300]),  # weights not +-1
    ([700.0, 700.0, -np.inf], [1.0, -1.0, 5.0]),  # a -inf entry contributes nothing
    ([1.0, 2.0, 1.0, 2.0], [1.0, 0.0, -1.0, 0.0]),
]


def _check(got: float, got_sign: float, x: np.ndarray, b: np.ndarray, dtype: str) -> None:
    exact, sign = _oracle.logsumexp(x, dtype, b=b)
    if math.isnan(exact):
        assert math.isnan(got) and math.isnan(got_sign)
        return
    if not math.isfinite(exact):
        assert (got, got_sign) == (exact, sign)
        return
    tol = _budgets.logsumexp_tolerance(x, b, exact, dtype)
    assert got_sign == sign, (x.tolist(), b.tolist(), got, exact)
    assert abs(got - exact) <= tol, (x.tolist(), b.tolist(), got, exact, tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("x", "b"), EXACT_ZERO)
def test_exact_cancellation_is_minus_inf_with_sign_zero(backend: Any, dtype: str, x: list[float], b: list[float]) -> None:
    xa, ba = np.array(x, dtype=dtype), np.array(b, dtype=dtype)
    # the oracle agrees that these sums are exactly 0 (its grouped exact weights)
    assert _oracle.logsumexp(xa, dtype, b=ba) == (-math.inf, 0.0)
    value, sign = snn.logsumexp(backend.asarray(xa), b=backend.asarray(ba), return_sign=True)
    assert (float(backend.numpy(value)), float(backend.numpy(sign))) == (-math.inf, 0.0)
    # without return_sign the result of a zero sum is -inf too (not NaN)
    assert float(backend.numpy(snn.logsumexp(backend.asarray(xa), b=backend.asarray(ba)))) == -math.inf


# A survivor below a cancelled pair (findings A.1): scaling by the pair's e^x would
# underflow it.  Exact values: stablenn.audit._oracle.logsumexp (mpmath), e.g. for the
# first, mpmath.log(mpmath.mpf(1.3) * mpmath.exp(724)) -> 724.2623642644675.
SURVIVORS = [
    ("float64", [2000.0, 2000.0, 724.0], [1.0, -1.0, 1.3]),
    ("float64", [1500.0, 5.0, 1500.0, 1400.0, 1400.0], [-1.0, 2.0, 1.0, 3.0, -3.0]),
    ("float32", [5.12e-18, 7.04e-18], [1.0, -1.0]),  # 1 - e^{2e-18}: sign -1, log -40.79
    ("float16", [10.0, 10.0, -94.625], [1.0, -1.0, 1.0]),
]


@pytest.mark.parametrize(("dtype", "x", "b"), SURVIVORS)
def test_a_survivor_of_cancelled_pairs_keeps_its_value(backend: Any, dtype: str, x: list[float], b: list[float]) -> None:
    if backend.name == "array_api_strict" and dtype == "float16":
        dtype = "float32"  # array-api-strict has no float16
    xa, ba = np.array(x, dtype=dtype), np.array(b, dtype=dtype)
    value, sign = snn.logsumexp(backend.asarray(xa), b=backend.asarray(ba), return_sign=True)
    got, got_sign = float(backend.numpy(value)), float(backend.numpy(sign))
    assert math.isfinite(got)
    _check(got, got_sign, xa, ba, dtype)


def _signed_cases(dtype: str, n: int, seed: int, max_len: int = 1000) -> list[Any]:
    cases = _sampler.sample_vectors(dtype, n, seed=seed, weights=True, max_len=max_len)
    return [c for c in cases if c.b is not None and (c.b < 0).any() and (c.b > 0).any()]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_sampled_signed_weights_stay_within_the_kappa_bound(dtype: str) -> None:
    # the sampler's '+b' kinds with weights of both signs: exact cancellations, +-1 pairs on
    # nearly equal x, tiny weights; each checked against the oracle and its allowance
    cases = _signed_cases(dtype, 3000 if dtype == "float64" else 1500, seed=11)
    assert len(cases) > 300
    worst = 0.0
    for c in cases:
        value, sign = snn.logsumexp(c.x, b=c.b, return_sign=True)
        _check(float(value), float(sign), c.x, c.b, dtype)
        exact, _ = _oracle.logsumexp(c.x, dtype, b=c.b)
        if math.isfinite(exact) and float(value) != exact:
            worst = max(worst, abs(float(value) - exact))
    assert worst < math.inf


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_backend_meets_the_bound_on_sampled_signed_weights(backend: Any, dtype: str) -> None:
    # the same kernel on every backend: the rows padded with entries that contribute
    # nothing (x = -inf, b = 0) to one length, one call
    cases = _signed_cases(dtype, 300, seed=5, max_len=60)
    if backend.name == "jax":
        # XLA on the CPU flushes subnormal inputs to zero (a platform rule, see
        # tests/test_accuracy.py): keep the rows without subnormal entries
        tiny = np.finfo(dtype).tiny
        cases = [c for c in cases if not (((c.x != 0) & (np.abs(c.x) < tiny)).any() or ((c.b != 0) & (np.abs(c.b) < tiny)).any())]
    assert len(cases) > 30
    width = max(c.x.size for c in cases)
    x = np.full((len(cases), width), -np.inf, dtype=dtype)
    b = np.zeros((len(cases), width), dtype=dtype)
    for i, c in enumerate(cases):
        x[i, : c.x.size], b[i, : c.b.size] = c.x, c.b
    value, sign = snn.logsumexp(backend.asarray(x), b=backend.asarray(b), axis=-1, return_sign=True)
    value, sign = backend.numpy(value).astype(np.float64), backend.numpy(sign).astype(np.float64)
    for i, c in enumerate(cases):
        _check(float(value[i]), float(sign[i]), c.x, c.b, dtype)


def test_near_cancellation_is_accurate_to_the_double_double_bound() -> None:
    # e^1 - 2.718281828459045 (the float64 nearest e): kappa_b is about 3.8e16, so float64
    # terms alone (error u kappa_b, about 4 in the log) would leave no digit; the
    # double-double terms keep all 16.  mpmath.mp.prec = 300;
    # mpmath.log(mpmath.e - mpmath.mpf(2.718281828459045)) -> -36.47280459058011
    x, b = np.array([1.0, 0.0]), np.array([1.0, -2.718281828459045])
    assert float(snn.logsumexp(x, b=b)) == -36.47280459058011
    # and spread over many terms of both signs, in an order that is not sorted
    rng = np.random.default_rng(3)
    xs = np.concatenate([np.full(50, 1.0), np.full(50, 0.0)])
    bs = np.concatenate([np.full(50, 1.0), np.full(50, -2.718281828459045)])
    p = rng.permutation(100)
    value = float(snn.logsumexp(xs[p], b=bs[p]))
    # mpmath.log(50 * (mpmath.e - mpmath.mpf(2.718281828459045))) -> -32.560781585151965
    _check(value, 1.0, xs[p], bs[p], "float64")
    assert abs(value - -32.560781585151965) <= 2 * np.spacing(32.560781585151965)


def test_long_rows_group_their_terms_across_the_whole_row() -> None:
    # longer than the cache block (rows cut into pieces otherwise): the cancellation
    # spans the row and must still be exact, and a survivor far below keeps its value
    rng = np.random.default_rng(7)
    base = rng.normal(0.0, 50.0, 20000)
    x = np.concatenate([base, base])
    b = np.concatenate([np.ones(20000), -np.ones(20000)])
    p = rng.permutation(x.size)
    value, sign = snn.logsumexp(x[p], b=b[p], return_sign=True)
    assert (float(value), float(sign)) == (-math.inf, 0.0)
    x2, b2 = np.append(x[p], -1000.0), np.append(b[p], 2.0)
    value, sign = snn.logsumexp(x2, b=b2, return_sign=True)
    # mpmath.log(2 * mpmath.exp(-1000)) -> -999.3068528194401
    assert (float(value), float(sign)) == (-999.3068528194401, 1.0)


def test_jit_traces_the_signed_path() -> None:
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda x, b: snn.logsumexp(x, b=b, axis=-1, return_sign=True))
    x = jnp.asarray(np.array([[0.5, -0.25, 0.5, -0.25], [2000.0, 2000.0, 724.0, -np.inf]]))
    b = jnp.asarray(np.array([[1.0, -1.0, -1.0, 1.0], [1.0, -1.0, 1.3, 1.0]]))
    value, sign = (np.asarray(a) for a in f(x, b))
    assert value[0] == -math.inf and sign[0] == 0.0
    # mpmath.log(mpmath.mpf(1.3) * mpmath.exp(724)) -> 724.2623642644675
    assert (value[1], sign[1]) == (724.2623642644675, 1.0)


def test_special_values_with_weights_of_both_signs(backend: Any) -> None:
    x = np.array([[1.0, np.inf, 0.0], [1.0, np.nan, 0.0], [np.inf, np.inf, 0.0], [np.nan, 3.0, 3.0]])
    b = np.array([[1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, -1.0]])
    value, sign = snn.logsumexp(backend.asarray(x), b=backend.asarray(b), axis=-1, return_sign=True)
    got = backend.numpy(value).tolist(), backend.numpy(sign).tolist()
    # -inf term: +inf with sign -1; NaN anywhere: NaN; +inf and -inf terms: NaN;
    # b == 0 removes the NaN entry and the rest cancels exactly
    assert got[0][0] == math.inf and got[1][0] == -1.0
    assert math.isnan(got[0][1]) and math.isnan(got[1][1])
    assert math.isnan(got[0][2]) and math.isnan(got[1][2])
    assert (got[0][3], got[1][3]) == (-math.inf, 0.0)


def test_the_allowance_is_the_plain_budget_without_weights_of_both_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 3.0, 20)
    exact, _ = _oracle.logsumexp(x, "float64", b=np.abs(x))
    before = _budgets.logsumexp_tolerance(x, np.abs(x), exact, "float64")
    monkeypatch.setattr(_budgets, "KAPPA_B_FACTOR", 1e30)
    assert _budgets.logsumexp_tolerance(x, np.abs(x), exact, "float64") == before
    # with both signs the kappa_b term is there (and grows with the factor)
    b = np.where(np.arange(20) % 2 == 0, 1.0, -1.0)
    exact, _ = _oracle.logsumexp(x, "float64", b=b)
    big = _budgets.logsumexp_tolerance(x, b, exact, "float64")
    monkeypatch.setattr(_budgets, "KAPPA_B_FACTOR", 4096.0)
    assert _budgets.logsumexp_tolerance(x, b, exact, "float64") < big


def test_positive_weights_keep_the_plain_path() -> None:
    from stablenn._kernels import reductions as k

    x = np.zeros(4)
    assert not k.signed_path(np, x, np.array([1.0, 2.0, 0.0, 3.0]), None)
    assert not k.signed_path(np, x, -np.ones(4), None)
    assert k.signed_path(np, x, np.array([1.0, -2.0, 0.0, 3.0]), None)


def test_result_dtype_and_rounding_of_narrow_formats(backend: Any) -> None:
    # a float32 near cancellation computed in float64 and rounded once
    x = np.array([1.0, 0.0], dtype=np.float32)
    b = np.array([1.0, -2.7182817459106445], dtype=np.float32)  # float32 nearest e
    value = snn.logsumexp(backend.asarray(x), b=backend.asarray(b))
    assert backend.numpy(value).dtype == np.float32
    # mpmath.log(mpmath.e - mpmath.mpf(2.7182817459106445)) -> -15.8767... rounded to float32
    exact, _ = _oracle.logsumexp(x, "float32", b=b)
    assert float(backend.numpy(value)) == float(to_storage(np.array([exact]), "float32")[0])


def test_jit_signed_path_on_long_rows() -> None:
    # XLA fused the strided slices of the merge scan and of the pairwise double-double sum
    # into their consumers and recomputed every stage per use: a jitted call took 1 ms at
    # length 16 and did not finish in minutes at 32.  Rows of 300 entries whose pairs cancel
    # exactly, with one survivor far below them; truth from the mpmath oracle.
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(3)
    x = np.repeat(rng.uniform(-5.0, 800.0, (4, 150)), 2, axis=-1)
    b = np.tile(np.array([1.0, -1.0]), (4, 150)) * np.repeat(rng.uniform(0.5, 2.0, (4, 150)), 2, axis=-1)
    x[:, 7], b[:, 7] = -300.0, 0.75  # its pair partner (index 6) is left alone: it survives too
    f = jax.jit(lambda x, b: snn.logsumexp(x, b=b, axis=-1, return_sign=True))
    value, sign = (np.asarray(a) for a in f(jnp.asarray(x), jnp.asarray(b)))
    for i in range(4):
        exact, exact_sign = _oracle.logsumexp(x[i], "float64", b=b[i])
        assert sign[i] == exact_sign
        assert abs(value[i] - exact) <= _budgets.logsumexp_tolerance(x[i], b[i], exact, "float64")
