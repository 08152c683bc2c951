"""The tiled plain-NumPy kernels (``stablenn._kernels._numpy_fast``) against the mpmath oracle.

Large NumPy arrays without weights or shift take these kernels whatever the compiled paths
do (they are the plain path: no Numba, ``STABLENN_FAST_CPU=0`` or ``STABLENN_PLAIN=1``).
Every sampled vector (`stablenn.audit._sampler.sample_vectors`: dominant terms, ``-inf``
entries, ties, log-probabilities, uniform bit patterns, infinities, NaN) is placed in a
2-D array as several rows (the vector, reversed, rolled: the oracle's answer permuted), with
tiles shrunk so that one array exercises multi-row tiles, rows cut into column chunks
(the long-row path), tiles handed to the special-case kernel next to clean ones, and both
float64 softmax branches (unshifted and shifted).  Budgets: `stablenn.audit._budgets`.
"""

from __future__ import annotations

import numpy as np
import pytest

import stablenn as snn
from stablenn import _dispatch
from stablenn._kernels import _numpy_fast as nf
from stablenn.audit import _budgets, _oracle, _sampler
from stablenn.audit._ulp import to_storage, ulp_distance

DTYPES = ("float16", "float32", "float64")
N_VECTORS = {"float16": 120, "float32": 200, "float64": 200}


def _permutations(n: int) -> list[np.ndarray]:
    idx = np.arange(n)
    return [idx, idx[::-1], np.roll(idx, n // 3)]


@pytest.fixture
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    # rows up to 48 go by tiles of whole rows (several per tile), longer rows by chunks of 48
    monkeypatch.setattr(nf, "TILE", 48)
    monkeypatch.setattr(nf, "MIN_ELEMENTS", 1)
    nf._BUF.flat.clear()
    yield
    nf._BUF.flat.clear()


def _cases(dtype: str) -> list[_sampler.VectorCase]:
    return _sampler.sample_vectors(dtype, N_VECTORS[dtype], seed=11, max_len=200)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
def test_normalisers_within_budget(small_tiles: None, function: str, dtype: str) -> None:
    limit = _budgets.budget(function, dtype)
    worst = 0.0
    for case in _cases(dtype):
        x = case.x
        perms = _permutations(x.size)
        ref = getattr(_oracle, function)(x, dtype)
        rows = np.stack([x[p] for p in perms])
        got = getattr(nf, function)(rows)
        assert got.dtype == x.dtype and got.shape == rows.shape
        for row, p in zip(got, perms):
            ulps = ulp_distance(row, ref[p], dtype)
            worst = max(worst, float(ulps.max()))
            assert ulps.max() <= limit, (case.kind, x.tolist(), row.tolist(), ref[p].tolist())
    assert worst <= limit


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_within_budget(small_tiles: None, dtype: str) -> None:
    limit = _budgets.budget("logsumexp", dtype)
    for case in _cases(dtype):
        x = case.x
        exact, _ = _oracle.logsumexp(x, dtype)
        rows = np.stack([x[p] for p in _permutations(x.size)])
        res, sign = nf.logsumexp(rows)
        got = to_storage(res.astype(x.dtype), dtype)
        want = to_storage(np.array([exact]), dtype)
        allowed = _budgets.logsumexp_tolerance(x, None, exact, dtype)
        ulps = ulp_distance(got, want, dtype)
        for g, u in zip(got.astype(np.float64), ulps):  # within the budget, or within the
            # conditioning allowance where the result is near 0 (never for inf or NaN)
            assert u <= limit or abs(g - float(want[0])) <= allowed, (case.kind, x.tolist(), got.tolist(), exact)
        assert np.all((sign == 1) | np.isnan(res) | (res == -np.inf))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_public_functions_take_the_tiled_path_with_the_same_answers(monkeypatch: pytest.MonkeyPatch, dtype: str) -> None:
    # Through the public API (dispatch of reductions.py), other axes included: the tiled
    # kernels give what the array-API kernels give, to the budget, on a large-enough array.
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((40, 3, 700)) * 30).astype(dtype)
    x[3, 1, 5] = -np.inf  # one tile through the special-case kernel
    calls: list[str] = []
    for name in ("softmax", "log_softmax", "logsumexp"):
        real = getattr(nf, name)

        def spy(a: np.ndarray, real=real, name=name) -> object:
            calls.append(name)
            return real(a)

        monkeypatch.setattr(nf, name, spy)
    with _dispatch.plain_only():
        for axis in (-1, 0):
            sm = snn.softmax(x, axis=axis)
            lsm = snn.log_softmax(x, axis=axis)
            lse = snn.logsumexp(x, axis=axis)
            assert sm.dtype == lsm.dtype == lse.dtype == x.dtype
            xm = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
            sm_m = np.moveaxis(sm, axis, -1).reshape(xm.shape)
            lsm_m = np.moveaxis(lsm, axis, -1).reshape(xm.shape)
            lse_m = lse.reshape(-1)
            for i in range(0, xm.shape[0], 97):  # a sample of rows against the oracle
                row = xm[i]
                assert ulp_distance(sm_m[i], _oracle.softmax(row, dtype), dtype).max() <= _budgets.budget("softmax", dtype)
                assert ulp_distance(lsm_m[i], _oracle.log_softmax(row, dtype), dtype).max() <= _budgets.budget("log_softmax", dtype)
                exact, _ = _oracle.logsumexp(row, dtype)
                assert ulp_distance(lse_m[i], np.array([exact]), dtype).max() <= _budgets.budget("logsumexp", dtype)
    assert calls.count("softmax") == 2 and calls.count("log_softmax") == 2 and calls.count("logsumexp") == 2


def test_special_rows_next_to_clean_ones() -> None:
    # A tile holding NaN, +inf, all -inf and overflowing x - m rows goes to the special-case
    # kernel; rows are independent, so each row's answer is the documented one.
    x = np.zeros((200, 512))
    x[:, 0] = 3.0
    x[1, 7] = np.nan
    x[2, 9] = np.inf
    x[3, :] = -np.inf
    x[4, 0], x[4, 1] = 1e308, -1e308  # x - m overflows to -inf
    sm = nf.softmax(x)
    lsm = nf.log_softmax(x)
    lse, _ = nf.logsumexp(x)
    assert np.isnan(sm[1]).all() and np.isnan(lsm[1]).all() and np.isnan(lse[1])
    assert sm[2, 9] == 1.0 and sm[2].sum() == 1.0 and lsm[2, 9] == 0.0 and lse[2] == np.inf
    assert (sm[3] == 0).all() and (lsm[3] == -np.inf).all() and lse[3] == -np.inf
    assert sm[4, 0] == 1.0 and sm[4, 1] == 0.0 and lsm[4, 1] == -np.inf and lse[4] == 1e308
    # the clean rows, [3, 0, ..., 0] (511 zeros), in fast tiles and in tiles that went to the
    # special-case kernel; mpmath.mp.prec = 200; S = mpmath.e**3 + 511;
    # float(mpmath.e**3 / S), float(1 / S) -> 0.0378197776568197, 0.0018829358558574956
    # float(3 - mpmath.log(S)), float(-mpmath.log(S)) -> -3.2749230947532504, -6.27492309475325
    clean = [0] + list(range(5, 200))
    assert ulp_distance(sm[clean, 0], 0.0378197776568197, "float64").max() <= 2
    assert ulp_distance(sm[clean, 1:], 0.0018829358558574956, "float64").max() <= 2
    assert ulp_distance(lsm[clean, 0], -3.2749230947532504, "float64").max() <= 2
    assert ulp_distance(lsm[clean, 1:], -6.27492309475325, "float64").max() <= 2


def test_threads_see_the_callers_error_state() -> None:
    # The tiles run on worker threads: a caller's np.errstate(all="raise") must not be lost
    # there, nor leak warnings from intended overflows (the public functions silence them).
    x = np.full((300, 400), -1e308)
    x[:, 0] = 1e308
    with np.errstate(all="raise"), _dispatch.plain_only():
        y = snn.softmax(x)
    assert (y[:, 0] == 1).all()
