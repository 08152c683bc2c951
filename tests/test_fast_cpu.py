"""The fused CPU fast paths (``stablenn._fast.cpu``): when they are taken, their accuracy
against the mpmath oracle, their special values and errors against the plain path's.

``_cpu_entries.forced()`` makes every applicable entry apply whatever the array's size, so
that small test arrays run the kernels; ``_dispatch.plain_only()`` gives the plain path.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import stablenn as snn
from stablenn import _dispatch, _messages
from stablenn._fast import _cli as bench_cli
from stablenn._fast import _cpu_entries as E
from stablenn._fast.cpu import _driver as D
from stablenn.audit import _measure, _oracle, _sampler
from stablenn.audit._budgets import budget, logsumexp_tolerance
from stablenn.audit._ulp import get_format, to_storage, ulp_distance

DTYPES = ("float32", "float64")
INF, NAN = math.inf, math.nan

ELEMENTWISE = ("sigmoid", "softplus", "log_sigmoid", "sigmoid_grad", "tanh_grad")
ALL = (*ELEMENTWISE, "logsumexp", "softmax", "log_softmax", "binary_cross_entropy_with_logits", "cross_entropy_with_logits")


def _fast(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    with E.forced():
        return fn(*args, **kw)


def _plain(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    with _dispatch.plain_only():
        return fn(*args, **kw)


def _identical(a: Any, b: Any) -> bool:
    """Same shape, dtype and values; NaN equals NaN; zeros compare with their sign."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return bool(np.all(same) and np.all(np.signbit(a[a == 0]) == np.signbit(b[a == 0])))


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Split rows from 256 entries on, so that small vectors take the long-row path."""
    monkeypatch.setattr(D, "MIN_CHUNK", 128)
    monkeypatch.setattr(D, "ROW_IN_CACHE", 256)
    yield


# ------------------------------------------------------------------ the table


def test_importing_stablenn_imports_no_numba():
    code = "import sys, stablenn, stablenn._dispatch; print('numba' in sys.modules, 'stablenn._fast.cpu._jit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("name", ALL)
def test_every_function_has_a_numpy_entry_for_float32_and_float64(name):
    entries = _dispatch.entries()[(name, "numpy")]
    ours = [e for e in entries if e.load.__module__ == E.__name__]
    assert len(ours) == 1 and ours[0].dtypes == frozenset(DTYPES)


def _lookup(x: np.ndarray, name: str = "logsumexp") -> Any:
    args = (x, None, False) if name == "logsumexp" else (x,)
    return _dispatch.lookup(name, "numpy", x.dtype, *args)


def _ours(fn: Any) -> bool:
    return fn is not None and fn.__module__ == D.__name__


def test_fast_path_is_taken_for_large_numpy_arrays():
    x = np.zeros((4, E.MIN_ELEMENTS["logsumexp"] // 4))
    assert _ours(_lookup(x))
    assert _ours(_lookup(x.astype(np.float32), "softmax"))
    assert not _ours(_lookup(x[:, :10]))  # too small to benefit
    with E.forced():
        assert _ours(_lookup(x[:, :10]))


def test_fast_path_refuses_what_it_cannot_read():
    x = np.zeros((64, 512))
    long_row = np.zeros(2 * (E._MAX_STRIDED_ROW_BYTES // 8 + 1))
    with E.forced():
        assert _ours(_lookup(x[:, ::2]))  # last axis strided: copied a few rows at a time
        assert _ours(_lookup(x[:, ::-1]))  # negative stride: likewise
        assert _ours(_lookup(x.T))  # a reduction over axis 0
        assert not _ours(_lookup(long_row[::2]))  # one strided row would be a full-size copy
        assert not _ours(_lookup(x.astype(">f8")))  # byte-swapped
        assert not _ours(_lookup(x.view(np.matrix)))  # a subclass
        assert _ours(_lookup(np.asfortranarray(x)[1:, :], "sigmoid"))  # neither C nor F: by blocks
        assert _ours(_lookup(x[:, 1:]))  # rows with gaps: read in place
        assert _ours(_lookup(np.asfortranarray(x), "sigmoid"))
        assert _dispatch.lookup("logsumexp", "numpy", x.dtype, x, np.ones_like(x), False) is None  # weights b
        assert _dispatch.lookup("logsumexp", "numpy", np.float16, x.astype(np.float16), None, False) is None


def test_fast_path_is_never_chosen_for_other_backends():
    import torch

    t = torch.zeros((8, 4096), dtype=torch.float64)
    with E.forced():
        for name in ("logsumexp", "softmax", "sigmoid"):
            args = (t, None, False) if name == "logsumexp" else (t,)
            assert not _ours(_dispatch.lookup(name, "torch", t.dtype, *args))
        y = snn.logsumexp(t, axis=-1)
    assert isinstance(y, torch.Tensor)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("STABLENN_FAST_CPU", "0")
    with E.forced():
        assert _lookup(np.zeros((64, 512))) is None


# ------------------------------------------------------------------ accuracy: reductions


_KINDS = ("scale", "dominant", "neg_inf", "near_zero", "tiny_rest", "ties")


def _vectors(dtype: str, seed: int) -> list[tuple[str, np.ndarray]]:
    fmt = get_format(dtype)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(36):
        kind = _KINDS[i % len(_KINDS)]
        n = max(2, int(np.exp(rng.uniform(0, np.log(1500)))))
        out.append((kind, _sampler._vector_x(fmt, kind, n, rng)))
    # blocks of 2048: a maximum in a later block rescales the running sum; sorted input
    # rescales at every block
    x = np.sort(rng.standard_normal(6000) * 30)
    out += [("ascending", x), ("descending", x[::-1].copy())]
    t = rng.standard_normal(4100)
    t[4099] = 45.0
    out.append(("late maximum", t))
    big = [1e300, 1e300] if dtype == "float64" else [3e38, 3e38]
    out += [("largest", np.array(big)), ("spread", np.array([1e6, 1e6 - 700.5, 1e6 - 30, -1e6 + 5]))]
    out += [("subnormal results", np.array([0.0, -720.0, -740.0, -744.9])), ("-ln2 pair", np.array([-math.log(2)] * 2))]
    return [(k, _sampler._narrow(v, fmt).astype(dtype)) for k, v in out]


def _check_vector(kind: str, x: np.ndarray, dtype: str) -> None:
    fmt = get_format(dtype)
    ref = _oracle.vector(x.astype(np.float64), dtype)
    rows = np.stack([x, x, x])  # the row kernels; 1-D: the long-row path where it applies
    for data in (x, rows):
        lse = _fast(snn.logsumexp, data, axis=-1)
        with np.errstate(invalid="ignore"):  # -inf - -inf for an all -inf vector
            err = np.abs(np.asarray(lse, dtype=np.float64) - ref.logsumexp)
        ulps = ulp_distance(np.asarray(lse), to_storage(np.array(ref.logsumexp), dtype), dtype)
        tol = logsumexp_tolerance(x.astype(np.float64), None, ref.logsumexp, fmt)
        ok = (ulps <= budget("logsumexp", dtype)) | (err <= tol)
        assert np.all(ok), (kind, x.size, lse, ref.logsumexp)
        for name, want in (("softmax", ref.softmax), ("log_softmax", ref.log_softmax)):
            got = _fast(getattr(snn, name), data)
            u = ulp_distance(got, to_storage(np.broadcast_to(want, got.shape), dtype), dtype)
            assert np.max(u) <= budget(name, dtype), (name, kind, x.size, float(np.max(u)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_within_budget_rows(dtype):
    for kind, x in _vectors(dtype, seed=1):
        _check_vector(kind, x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_within_budget_long_rows(dtype, small_chunks):
    # every vector above 256 entries is split in pieces merged in double-double; float32
    # log-probabilities cancel (logsumexp near 0) and are summed again in double-double
    for kind, x in _vectors(dtype, seed=2):
        _check_vector(kind, x, dtype)


def test_float32_cancellation_is_detected_and_summed_again():
    # log-probabilities: logsumexp = m + log S cancels to about 1e-8; the cheap float32 sum
    # (2**-39 relative) would be thousands of ULP off there
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.full(3000, 0.5))
    x = np.log(p.astype(np.float32)).astype(np.float32)
    ref = _oracle.vector(x.astype(np.float64), "float32").logsumexp
    got = _fast(snn.logsumexp, x)
    assert ulp_distance(np.asarray(got), np.array([ref], dtype=np.float32), "float32")[0] <= 1


# ------------------------------------------------------------------ accuracy: the audit


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_within_budget(name, dtype):
    with E.forced():
        r = _measure.measure(name, dtype, samples=6000, seed=7, processes=1)
    assert r.violations == 0 and r.max_ulp_checked <= budget(name, dtype), r


def _loss_batches(name: str, dtype: str, seed: int) -> Iterator[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], Any]]:
    if name == "binary_cross_entropy_with_logits":
        for b in _sampler.sample_bce(dtype, 600, seed, max_len=300):
            kw = {"weight": b.weight, "pos_weight": b.pos_weight}
            yield snn.binary_cross_entropy_with_logits, (b.logits, b.targets), kw, _measure._task_bce(b, dtype)
    else:
        for b in _sampler.sample_cross_entropy(dtype, 60, seed, max_classes=300):
            kw = {"weight": b.weight, "label_smoothing": b.label_smoothing, "ignore_index": b.ignore_index}
            yield snn.cross_entropy_with_logits, (b.logits, b.targets), kw, _measure._task_ce(b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["binary_cross_entropy_with_logits", "cross_entropy_with_logits"])
def test_losses_within_budget(name, dtype):
    # every finite exact output (each loss, the mean, the sum) within the budget, means
    # over elements whose own loss exceeds the format included; outputs whose exact value
    # is not finite are special values, compared with the plain path's below.
    limit = budget(name, dtype)
    for fn, args, kw, (none, mean, total) in _loss_batches(name, dtype, seed=3):
        for reduction, exact in (("none", none), ("mean", mean), ("sum", total)):
            exact = np.atleast_1d(np.asarray(exact, dtype=np.float64))
            got = np.atleast_1d(np.asarray(_fast(fn, *args, reduction=reduction, **kw)))
            finite = np.isfinite(exact)
            u = ulp_distance(got[finite], to_storage(exact[finite], dtype), dtype)
            assert np.max(u, initial=0) <= limit, (reduction, float(np.max(u)), kw)


# ------------------------------------------------------------------ special values


def _specials(dtype: str) -> np.ndarray:
    info = np.finfo(dtype)
    return np.array(
        [NAN, INF, -INF, 0.0, -0.0, info.max, -info.max, info.smallest_subnormal, -info.smallest_subnormal,
         info.tiny, 1.0, -1.0, 20.0, -20.0, 40.0, -40.0, 88.7, -103.9, 709.7, -708.4, -745.1, -746.0, 1e4, -1e4],
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_special_values_are_the_plain_paths(name, dtype):
    x = _specials(dtype)
    fn = getattr(snn, name)
    fast, plain = _fast(fn, x), _plain(fn, x)
    special = ~np.isfinite(x) | (x == 0) | ~np.isfinite(plain) | (plain == 0)
    assert _identical(fast[special], plain[special])
    ref = _oracle.elementwise(name, x.astype(np.float64), dtype)
    assert np.all(ulp_distance(fast, to_storage(ref, dtype), dtype)[~special] <= budget(name, dtype))


NORMALISE_ROWS = [
    [-INF, -INF, -INF, -INF],
    [1.0, INF, INF, 0.0],
    [1.0, NAN, 2.0, 0.0],
    [-INF, 0.0, -INF, 3.0],
    [INF, -INF, 1.0, 2.0],
    [NAN, NAN, NAN, NAN],
    [-INF, -INF, NAN, -INF],
    [0.5, 0.25, -1.0, 2.0],
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunked", [False, True])
def test_reduction_special_rows_are_the_plain_paths(dtype, chunked, monkeypatch):
    if chunked:
        monkeypatch.setattr(D, "MIN_CHUNK", 2)
        monkeypatch.setattr(D, "ROW_IN_CACHE", 2)
    x = np.array(NORMALISE_ROWS, dtype=dtype)
    for i in range(len(NORMALISE_ROWS) - 1):  # the last row is finite: a neighbour, not a special
        row = x[i : i + 1]
        for name in ("softmax", "log_softmax"):
            assert _identical(_fast(getattr(snn, name), row), _plain(getattr(snn, name), row)), (name, row)
        f = _fast(snn.logsumexp, row, axis=-1, return_sign=True)
        p = _plain(snn.logsumexp, row, axis=-1, return_sign=True)
        assert _identical(f[0], p[0]) and _identical(f[1], p[1]), row
        assert _identical(_fast(snn.logsumexp, row, axis=-1), _plain(snn.logsumexp, row, axis=-1))
    # all rows at once (the rows kernel, then the plain path for the flagged ones)
    for name in ("softmax", "log_softmax"):
        f, p = _fast(getattr(snn, name), x), _plain(getattr(snn, name), x)
        assert _identical(f[:-1], p[:-1])
        assert np.max(ulp_distance(f[-1], p[-1], dtype)) <= 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_axes_and_shapes(dtype):
    for shape, axis in (((3, 0), -1), ((0, 5), -1), ((0,), 0), ((2, 0, 3), 1)):
        x = np.zeros(shape, dtype=dtype)
        for fn in (snn.logsumexp, snn.softmax, snn.log_softmax):
            f, p = _fast(fn, x, axis=axis), _plain(fn, x, axis=axis)
            assert _identical(f, p), (fn.__name__, shape)
        f = _fast(snn.logsumexp, x, axis=axis, return_sign=True)
        p = _plain(snn.logsumexp, x, axis=axis, return_sign=True)
        assert _identical(f[0], p[0]) and _identical(f[1], p[1])
    for fn in (snn.sigmoid, snn.softplus):
        assert _identical(_fast(fn, np.zeros((0, 4), dtype)), _plain(fn, np.zeros((0, 4), dtype)))


BCE_CASES = [(INF, 1.0), (INF, 0.0), (INF, 0.5), (-INF, 0.0), (-INF, 1.0), (NAN, 1.0), (0.0, NAN), (0.0, 1.0), (3.0, 0.25)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_special_values_are_the_plain_paths(dtype, reduction):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 9)).astype(dtype) * 5
    y = rng.random((40, 9)).astype(dtype)
    for i, (a, b) in enumerate(BCE_CASES):
        x[i, i] = a
        y[i, i] = b
    # labels NaN pass the range check (NaN compares false) and poison their loss
    pw = rng.random(9).astype(dtype)
    for kw in ({}, {"pos_weight": pw}, {"weight": np.asarray(2.0, dtype)}, {"weight": pw, "pos_weight": pw}):
        f = _fast(snn.binary_cross_entropy_with_logits, x, y, reduction=reduction, **kw)
        p = _plain(snn.binary_cross_entropy_with_logits, x, y, reduction=reduction, **kw)
        special = ~np.isfinite(p) | (np.asarray(p) == 0)
        assert _identical(np.asarray(f)[special], np.asarray(p)[special])
        finite = np.isfinite(p)
        assert np.all(np.isfinite(f) == finite)
        # one row of finite entries: within the budget of the oracle
    xs, ys = x[-1], y[-1]
    got = _fast(snn.binary_cross_entropy_with_logits, xs, ys, reduction="none")
    ref = _oracle.bce(xs.astype(np.float64), ys.astype(np.float64), dtype)
    assert np.max(ulp_distance(got, to_storage(ref, dtype), dtype)) <= 1


CE_ROWS = [[0.0, -INF, 1.0], [-INF, 0.0, 2.0], [0.0, INF, 1.0], [INF, INF, 0.0], [NAN, 0.0, 1.0], [-INF, -INF, -INF], [1.0, 2.0, 3.0]]
CE_TARGETS = [0, 0, 1, 0, 1, 2, 2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_special_rows_are_the_plain_paths(dtype, reduction):
    x = np.array(CE_ROWS, dtype=dtype)
    t = np.array(CE_TARGETS)
    w = np.array([0.5, 2.0, 1.0], dtype=dtype)
    options = ({}, {"weight": w}, {"ignore_index": 1}, {"label_smoothing": 0.1}, {"weight": w, "label_smoothing": 0.2, "ignore_index": 0})
    for kw in options:
        for i in range(len(CE_ROWS)):
            f = _fast(snn.cross_entropy_with_logits, x[i : i + 1], t[i : i + 1], reduction=reduction, **kw)
            p = _plain(snn.cross_entropy_with_logits, x[i : i + 1], t[i : i + 1], reduction=reduction, **kw)
            assert _identical(f, p), (kw, CE_ROWS[i])
        f = _fast(snn.cross_entropy_with_logits, x, t, reduction=reduction, **kw)
        p = _plain(snn.cross_entropy_with_logits, x, t, reduction=reduction, **kw)
        special = ~np.isfinite(p)
        assert _identical(np.asarray(f)[special], np.asarray(p)[special]), kw


# ------------------------------------------------------------------ errors


def _error_calls(dtype: str) -> list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]:
    x = np.zeros((8, 5), dtype=dtype)
    y = np.full((8, 5), 0.5, dtype=dtype)
    t = np.zeros(8, dtype=np.int64)
    return [
        (snn.logsumexp, (x,), {"axis": 2}),
        (snn.logsumexp, (x,), {"axis": (0, 0)}),
        (snn.logsumexp, (x,), {"b": np.ones(3)}),
        (snn.logsumexp, (x.astype(np.complex128),), {}),
        (snn.softmax, (x,), {"axis": (0, 1)}),
        (snn.log_softmax, (x,), {"axis": -3}),
        (snn.softmax, (x,), {"shift": math.inf}),
        (snn.sigmoid, ([1.0, 2.0],), {}),
        (snn.softplus, (x.astype(np.complex64),), {}),
        (snn.binary_cross_entropy_with_logits, (x, y[:, :4]), {}),
        (snn.binary_cross_entropy_with_logits, (x, y + 1), {}),
        (snn.binary_cross_entropy_with_logits, (x, y), {"reduction": "avg"}),
        (snn.binary_cross_entropy_with_logits, (x, y), {"pos_weight": np.ones(3, dtype)}),
        (snn.cross_entropy_with_logits, (x, t + 5), {}),
        (snn.cross_entropy_with_logits, (x, t), {"weight": np.ones(4)}),
        (snn.cross_entropy_with_logits, (x, t), {"ignore_index": True}),
        (snn.cross_entropy_with_logits, (x, t), {"label_smoothing": 1.5}),
        (snn.cross_entropy_with_logits, (x, t[:4]), {}),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_errors_are_the_plain_paths(dtype):
    for fn, args, kw in _error_calls(dtype):
        with pytest.raises(Exception) as fast_error:
            _fast(fn, *args, **kw)
        with pytest.raises(Exception) as plain_error:
            _plain(fn, *args, **kw)
        assert type(fast_error.value) is type(plain_error.value), (fn.__name__, kw)
        assert str(fast_error.value) == str(plain_error.value)
        assert type(fast_error.value) in (TypeError, ValueError, IndexError)


# ------------------------------------------------------------------ layouts


@pytest.mark.parametrize("dtype", DTYPES)
def test_result_types_are_the_plain_paths(dtype):
    x = np.random.default_rng(15).standard_normal((6, 40)).astype(dtype)
    y = np.full_like(x, 0.5)
    t = np.arange(6)
    calls = [
        (snn.logsumexp, (x,), {}), (snn.logsumexp, (x[0],), {}), (snn.logsumexp, (x,), {"axis": 1, "keepdims": True}),
        (snn.softmax, (x,), {}), (snn.sigmoid, (x,), {}),
        *[(snn.binary_cross_entropy_with_logits, (x, y), {"reduction": r}) for r in ("none", "mean", "sum")],
        *[(snn.cross_entropy_with_logits, (x, t), {"reduction": r}) for r in ("none", "mean", "sum")],
    ]
    for fn, args, kw in calls:
        f, p = _fast(fn, *args, **kw), _plain(fn, *args, **kw)
        assert type(f) is type(p) and np.shape(f) == np.shape(p) and np.asarray(f).dtype == np.asarray(p).dtype, (fn.__name__, kw)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(dtype):
    rng = np.random.default_rng(11)
    base = (rng.standard_normal((6, 7, 300)) * 10).astype(dtype)
    views = {
        "C": base,
        "rows with gaps": base[:, 1:5, 3:290],
        "axis 1": np.moveaxis(base, 2, 1),
        "fortran": np.asfortranarray(base),
        "reversed": base[::-1, :, ::-2],
        "0-d": base[0, 0, :1].reshape(()),
        "1-D": base[2, 3],
        "1-D strided": base[2, :, 7],
    }
    # each layout gives exactly what the same values give in a fresh C-contiguous array (the
    # accuracy of those is tested above), with the plain path's shapes and dtypes
    for label, v in views.items():
        before = v.copy()
        c = np.array(v, order="C", copy=True)  # (ascontiguousarray would make 0-d arrays 1-D)
        for axis in (-1, 0):
            if v.ndim == 0 and axis == 0:
                continue
            for fn in (snn.softmax, snn.log_softmax):
                f, p = _fast(fn, v, axis=axis), _plain(fn, v, axis=axis)
                assert f.shape == p.shape and f.dtype == p.dtype
                assert _identical(f, _fast(fn, c, axis=axis)), (label, fn.__name__)
            for keepdims in (False, True):
                kw = {"axis": axis if v.ndim else None, "keepdims": keepdims}
                f, p = _fast(snn.logsumexp, v, **kw), _plain(snn.logsumexp, v, **kw)
                assert np.shape(f) == np.shape(p) and np.asarray(f).dtype == np.asarray(p).dtype
                assert _identical(f, _fast(snn.logsumexp, c, **kw)), label
        for fn in (snn.sigmoid, snn.log_sigmoid):
            f, p = _fast(fn, v), _plain(fn, v)
            assert f.shape == p.shape and _identical(f, _fast(fn, c)), label
        np.testing.assert_array_equal(v, before)  # inputs are never modified
        y = np.full(np.shape(v), 0.25, dtype=dtype)
        f = _fast(snn.binary_cross_entropy_with_logits, v, y, reduction="none")
        p = _plain(snn.binary_cross_entropy_with_logits, v, y, reduction="none")
        assert f.shape == p.shape and np.max(ulp_distance(f, p, dtype), initial=0) <= 2


def test_strided_rows_go_through_blocks(monkeypatch):
    # blocks of 3 rows: several blocks, and the special rows land in different ones
    monkeypatch.setattr(D, "BLOCK_BYTES", 3 * 40 * 8)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((40, 11)) * 20
    x[5, 3] = np.inf
    x[17, 2] = np.nan
    x[23] = -np.inf
    xt = x.T  # reductions over axis 0 of x: rows of xt are strided
    for fn in (snn.softmax, snn.log_softmax):
        f, p = _fast(fn, x, axis=0), _plain(fn, x, axis=0)
        special = ~np.isfinite(p) | (p == 0)
        assert _identical(f[special], p[special])
        assert np.max(ulp_distance(f[~special], p[~special], "float64")) <= 4
    for kw in ({}, {"return_sign": True}):
        f, p = _fast(snn.logsumexp, xt, axis=-1, **kw), _plain(snn.logsumexp, xt, axis=-1, **kw)
        for a, b in zip(np.atleast_1d(*(f if kw else (f,))), np.atleast_1d(*(p if kw else (p,)))):
            assert np.max(ulp_distance(np.asarray(a), np.asarray(b), "float64")) <= 4
    t = rng.integers(0, 40, size=11)
    for reduction in ("none", "mean", "sum"):
        f = _fast(snn.cross_entropy_with_logits, x, t, axis=0, reduction=reduction)
        p = _plain(snn.cross_entropy_with_logits, x, t, axis=0, reduction=reduction)
        assert _identical(np.isfinite(f), np.isfinite(p))
        fin = np.isfinite(p)
        assert np.max(ulp_distance(np.asarray(f)[fin], np.asarray(p)[fin], "float64"), initial=0) <= 4


def test_cross_entropy_class_axis_and_batch_dims():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 10, 6))
    t = rng.integers(0, 10, size=(4, 6))
    for reduction in ("none", "mean", "sum"):
        f = _fast(snn.cross_entropy_with_logits, x, t, axis=1, reduction=reduction)
        p = _plain(snn.cross_entropy_with_logits, x, t, axis=1, reduction=reduction)
        assert np.shape(f) == np.shape(p)
        assert np.max(ulp_distance(np.asarray(f), np.asarray(p), "float64"), initial=0) <= 4


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    # rows are whole tasks: identical; long rows are split by thread count: within budget
    rng = np.random.default_rng(13)
    rows, long = rng.standard_normal((64, 5000)), rng.standard_normal(600000)
    got = {}
    for threads in (1, 2, 3):
        monkeypatch.setattr(D, "THREADS", threads)
        got[threads] = (_fast(snn.logsumexp, rows, axis=-1), _fast(snn.softmax, rows), _fast(snn.logsumexp, long))
    for threads in (2, 3):
        assert _identical(got[threads][0], got[1][0]) and _identical(got[threads][1], got[1][1])
        assert ulp_distance(got[threads][2], got[1][2], "float64") <= 2


class _IdlePool:
    """A pool whose threads never get a core: submitted work never starts."""

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.submitted += 1


def test_the_calling_thread_finishes_a_call_alone_if_the_pool_never_runs(monkeypatch):
    # the pieces come from a shared counter: a pool thread that is not scheduled leaves its
    # pieces to the calling thread instead of making the call wait for it
    pool = _IdlePool()
    monkeypatch.setattr(D, "THREADS", 2)
    monkeypatch.setattr(D, "_pool", lambda n: pool)
    seen: list[tuple[int, int]] = []
    out = D.run_tasks(lambda a, t0, t1: (seen.append((t0, t1)), a * t0)[1], 100, D.PARALLEL_MIN, 3)
    assert pool.submitted == 1 and sorted(seen) == seen and seen[0][0] == 0 and seen[-1][1] == 100
    assert out == [3 * t0 for t0, _ in seen] and len(out) == 8
    x = np.random.default_rng(14).standard_normal((33, 4000))  # above PARALLEL_MIN
    want = np.array([_oracle.logsumexp(row, "float64")[0] for row in x])
    assert np.max(ulp_distance(_fast(snn.logsumexp, x, axis=-1), want, "float64")) <= budget("logsumexp", "float64")


def test_a_kernel_error_in_a_pool_thread_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(D, "THREADS", 2)

    def kernel(t0: int, t1: int) -> int:
        if t0 >= 4:
            raise ZeroDivisionError("piece")
        return t0

    with pytest.raises(ZeroDivisionError, match="piece"):
        D.run_tasks(kernel, 8, D.PARALLEL_MIN)


def test_forked_children_run_the_kernels():
    # an OpenMP pool does not survive a fork (GNU OpenMP terminates the child); the
    # kernels run on a Python thread pool that each process builds for itself
    code = (
        "import os, numpy as np, stablenn as snn\n"
        "x = np.random.default_rng(0).standard_normal((64, 8192))\n"
        "a = snn.logsumexp(x, axis=-1)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if np.array_equal(snn.logsumexp(x, axis=-1), a) else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split()[-1] == "0", out.stderr


# ------------------------------------------------------------------ compilation cache


def test_compiled_kernels_are_cached_on_disk(tmp_path):
    code = (
        "import numpy as np, stablenn as snn\n"
        "from stablenn._fast import _cpu_entries as E\n"
        "from stablenn._fast.cpu import _jit as J\n"
        "with E.forced(): snn.logsumexp(np.ones((4, 8)), axis=-1)\n"
        "s = J.lse_rows.stats\n"
        "print(s.cache_hits.total() if hasattr(s.cache_hits, 'total') else sum(s.cache_hits.values()))\n"
    )
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(first.stdout.split()[-1]) == 0  # compiled
    assert int(second.stdout.split()[-1]) >= 1  # loaded from the cache the first process left
    assert any(tmp_path.rglob("*.nbi"))


def test_cache_falls_back_to_a_writable_directory(tmp_path, monkeypatch):
    import numba

    from stablenn._fast.cpu import _jit as J

    # no locator can cache (only the user-provided one, with no directory given)
    monkeypatch.setattr(numba.config, "CACHE_LOCATOR_CLASSES", "UserProvidedCacheLocator")
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setattr(J, "_fallback_cache_dir", lambda: str(tmp_path))

    def twice(a: float) -> float:
        return 2.0 * a

    compiled = J.jit(twice)
    assert compiled(2.0) == 4.0
    assert numba.config.CACHE_DIR == ""  # restored after decoration
    assert any(tmp_path.rglob("*.nbi"))


# ------------------------------------------------------------------ the bench command


def test_bench_quick_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench_cli.main(["--quick", "--repeat", "7", "--only", "sigmoid float32", "--json", str(out), "--tiles"])
    assert code == 0
    doc = json.loads(out.read_text())
    impls = {r["implementation"] for r in doc["rows"]}
    assert {"stablenn", "scipy", "numpy textbook", "pytorch", "jax jit"} <= impls
    ours = next(r for r in doc["rows"] if r["implementation"] == "stablenn")
    assert ours["fast_path"] and len(ours["times_ms"]) == 7
    assert ours["min_ms"] <= ours["median_ms"] <= ours["max_ms"]
    assert ours["peak_extra_mib"] is not None
    printed = capsys.readouterr().out
    assert "x fastest" in printed and "sigmoid float32" in printed
    assert {t["workload"] for t in doc["tiles"]} >= {"logsumexp float64", "sigmoid float64"}


def test_bench_through_the_stablenn_command(capsys):
    from stablenn import cli

    assert cli.main(["bench", "--quick", "--repeat", "7", "--only", "1-D float64", "--peers", "numpy", "--no-memory", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["implementation"] for r in doc["rows"]] == ["stablenn", "numpy textbook"]
    assert doc["rows"][0]["peak_extra_mib"] is None


def test_bench_bad_arguments(capsys):
    assert bench_cli.main(["--quick", "--repeat", "3"]) == 2
    assert "--repeat" in capsys.readouterr().err
    assert bench_cli.main(["--quick", "--only", "nothing-like-this"]) == 2
    assert "--only" in capsys.readouterr().err


def test_bench_messages():
    e = _messages.bench_repeat(3)
    assert isinstance(e, ValueError) and "`--repeat`" in str(e) and "int 3" in str(e)
    e = _messages.bench_no_workload(["zz"], ["sigmoid float32"])
    assert isinstance(e, ValueError) and "'sigmoid float32'" in str(e) and "zz" in str(e)


def test_peak_memory_sees_numpy_allocations():
    got = bench_cli.peak_extra_bytes(lambda: np.ones(8 * 2**20))  # 64 MiB result
    assert got is not None and got >= 60 * 2**20


@pytest.mark.parametrize("kw", [{}, {"pos_weight": np.array([7.598238967503719, 3.0, 0.5, 1.0])}, {"weight": np.array([0.3, 2.0, 5.0, 1.0])}])
def test_bce_subnormal_losses_round_once(kw):
    # |x| > 708 with the large term's coefficient 0: the loss is c w e**-|x|, subnormal;
    # rounded once, not as a rounded subnormal e**-|x| times c
    x = np.array([709.7827128933841, 720.5, -730.25, 744.0])
    y = np.array([1.0, 1.0, 0.0, 1.0])
    got = _fast(snn.binary_cross_entropy_with_logits, x, y, reduction="none", **kw)
    ref = _oracle.bce(x, y, "float64", **kw)
    assert np.all(ulp_distance(got, to_storage(ref, "float64"), "float64") <= 1)
