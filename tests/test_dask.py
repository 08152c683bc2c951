"""Dask fast paths: one tree reduction over the mergeable state, on the threaded scheduler
and on a dask.distributed LocalCluster with two worker processes.

References come from the mpmath oracle of ``stablenn.audit``; budgets from its table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

import stablenn as snn
from stablenn.audit import _budgets, _oracle
from stablenn.audit._ulp import ulp_distance
from stablenn.streaming import importance_weights


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two worker processes, one thread each, started once for this module."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(params=["threads", "distributed"])
def compute(request: pytest.FixtureRequest, client: Client):  # noqa: ANN201
    """``compute(*lazy)``: NumPy results on the threaded scheduler or on the cluster."""
    scheduler = "threads" if request.param == "threads" else client

    def run(*arrays):  # noqa: ANN002, ANN202
        out = dask.compute(*arrays, scheduler=scheduler)
        return tuple(np.asarray(o) for o in out) if len(out) > 1 else np.asarray(out[0])

    return run


def _lse_ok(got: float, x: np.ndarray, b: np.ndarray | None, dtype: str) -> None:
    exact, _ = _oracle.logsumexp(x, dtype, b)
    tol = _budgets.logsumexp_tolerance(x, b, exact, dtype)
    if math.isnan(exact):
        assert math.isnan(got)
    elif math.isinf(exact):
        assert got == exact
    else:
        assert abs(got - exact) <= tol, (got, exact, tol)


def _components_ok(got: np.ndarray, exact: np.ndarray, function: str, dtype: str) -> None:
    dist = ulp_distance(got.astype(dtype), exact.astype(dtype), dtype)
    assert float(dist.max(initial=0.0)) <= _budgets.budget(function, dtype)


def _data(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape) * rng.choice([1.0, 40.0, 700.0], size=shape)
    return a.astype(dtype)


# ---------------------------------------------------------------- log-sum-exp
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("axis", [0, 1, None])
def test_logsumexp_any_axis_within_budget(compute, dtype: str, axis: int | None) -> None:  # noqa: ANN001
    a = _data((13, 57), dtype, seed=1)
    a[2, 5] = -np.inf
    x = da.from_array(a, chunks=(5, 11))
    y = snn.logsumexp(x, axis=axis)
    assert isinstance(y, da.Array) and y.dtype == np.dtype(dtype)
    out = compute(y)
    if axis is None:
        _lse_ok(float(out), a.ravel(), None, dtype)
    else:
        for i in range(a.shape[1 - axis]):
            _lse_ok(float(out[i]), np.take(a, i, axis=1 - axis), None, dtype)


def test_logsumexp_weights_return_sign_keepdims(compute) -> None:  # noqa: ANN001
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 30)) * 3
    b = rng.normal(size=30)
    res, sign = snn.logsumexp(
        da.from_array(a, chunks=(2, 7)), axis=1, b=da.from_array(b, chunks=13), return_sign=True, keepdims=True
    )
    assert res.shape == (4, 1)
    r, s = compute(res, sign)
    for i in range(4):
        exact, exact_sign = _oracle.logsumexp(a[i], "float64", b)
        assert float(s[i, 0]) == exact_sign
        _lse_ok(float(r[i, 0]), a[i], b, "float64")
    plain = compute(snn.logsumexp(da.from_array(a, chunks=(2, 7)), axis=1, b=da.from_array(b, chunks=13)))
    for i in range(4):
        assert math.isnan(plain[i]) == (_oracle.logsumexp(a[i], "float64", b)[1] < 0)


def test_logsumexp_special_slices_across_chunks(compute) -> None:  # noqa: ANN001
    a = np.array(
        [
            [-np.inf, -np.inf, -np.inf, -1000.0],  # the max lies in a chunk after all--inf chunks
            [-np.inf, -np.inf, -np.inf, -np.inf],
            [1.0, np.nan, 2.0, 3.0],
            [1.0, 2.0, np.inf, 3.0],
        ]
    )
    out = compute(snn.logsumexp(da.from_array(a, chunks=(2, 1)), axis=1))
    for i in range(4):
        _lse_ok(float(out[i]), a[i], None, "float64")


def test_logsumexp_reads_each_chunk_once() -> None:
    """One tree reduction: every input chunk feeds exactly one task (no max pass first)."""
    x = da.random.default_rng(0).normal(size=(8, 400), chunks=(4, 50))
    y = snn.logsumexp(x, axis=1)
    graph = dict(y.__dask_graph__())
    inputs = {k for k in graph if isinstance(k, tuple) and k[0] == x.name}
    assert len(inputs) == 16
    readers = {k: 0 for k in inputs}
    for key in graph:
        if key in inputs:
            continue
        for dep in _dependencies(graph, key):
            if dep in readers:
                readers[dep] += 1
    assert set(readers.values()) == {1}


def _dependencies(graph: dict, key: object) -> set:
    from dask.core import get_dependencies

    return set(get_dependencies(graph, key))


def test_softmax_reads_each_chunk_twice_at_most() -> None:
    x = da.random.default_rng(0).normal(size=(8, 400), chunks=(4, 50))
    graph = dict(snn.softmax(x).__dask_graph__())
    # the input's chunks are generated twice (the second read is a clone, so they need not
    # be held in memory until the normaliser is known), and each copy feeds one task
    sources = [k for k in graph if isinstance(k, tuple) and "normal" in str(k[0])]
    assert len(sources) == 2 * 16
    readers = dict.fromkeys(sources, 0)
    for key in graph:
        for dep in _dependencies(graph, key):
            if dep in readers:
                readers[dep] += 1
    assert set(readers.values()) == {1}


def test_logsumexp_unknown_chunk_sizes(compute) -> None:  # noqa: ANN001
    a = _data((300,), "float64", seed=3)
    x = da.from_array(a, chunks=70)
    kept = x[x > 0.5]  # chunk sizes unknown along the reduced axis
    assert any(math.isnan(c) for c in kept.chunks[0])
    _lse_ok(float(compute(snn.logsumexp(kept))), a[a > 0.5], None, "float64")
    sm = compute(snn.softmax(kept))
    _components_ok(sm, _oracle.softmax(a[a > 0.5], "float64"), "softmax", "float64")


def test_logsumexp_empty_axis(compute) -> None:  # noqa: ANN001
    x = da.from_array(np.zeros((3, 0)), chunks=(2, 1))
    res, sign = compute(*snn.logsumexp(x, axis=1, return_sign=True))
    assert res.tolist() == [-np.inf] * 3 and sign.tolist() == [0.0] * 3


@pytest.mark.parametrize("shape", [(150_000,), (3, 40_000), (400, 200)], ids=["long", "long rows", "many rows"])
def test_cache_blocked_chunks_within_budget(compute, shape: tuple[int, ...]) -> None:  # noqa: ANN001
    """Chunks large enough for the cache-blocked forms (rows, and pieces of long rows)."""
    a = _data(shape, "float64", seed=8)
    a.reshape(-1)[::997] = -np.inf  # special entries inside blocks
    chunks = tuple(max(1, s // 2) for s in shape)
    x = da.from_array(a, chunks=chunks)
    lse, sm = compute(snn.logsumexp(x, axis=-1), snn.log_softmax(x, axis=-1))
    rows = a.reshape(-1, shape[-1])
    for i in (0, rows.shape[0] - 1):
        _lse_ok(float(np.reshape(lse, -1)[i]), rows[i], None, "float64")
        _components_ok(sm.reshape(-1, shape[-1])[i], _oracle.log_softmax(rows[i], "float64"), "log_softmax", "float64")


# ---------------------------------------------------------------- softmax, log-softmax
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
def test_softmax_components_within_budget(compute, dtype: str, function: str) -> None:  # noqa: ANN001
    a = _data((40, 6), dtype, seed=4)
    a[:, 3] = -np.inf
    a[0, 0], a[7, 0] = np.inf, np.inf
    a[5, 1] = np.nan
    y = getattr(snn, function)(da.from_array(a, chunks=(9, 4)), axis=0)
    assert isinstance(y, da.Array) and y.dtype == np.dtype(dtype)
    out = compute(y)
    oracle = getattr(_oracle, function)
    for j in range(6):
        _components_ok(out[:, j], oracle(a[:, j], dtype), function, dtype)


# ---------------------------------------------------------------- losses
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_lazy_and_within_budget(compute, reduction: str, dtype: str) -> None:  # noqa: ANN001
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(30, 4)) * 20).astype(dtype)
    y = rng.uniform(size=(30, 4)).astype(dtype)
    w = rng.uniform(0.5, 2, size=(30, 1)).astype(dtype)
    pw = np.array([1.0, 2.0, 0.5, 1.0], dtype=dtype)
    out = snn.binary_cross_entropy_with_logits(
        da.from_array(x, chunks=(7, 3)),
        da.from_array(y, chunks=(11, 2)),
        weight=da.from_array(w, chunks=(5, 1)),
        pos_weight=da.from_array(pw, chunks=2),
        reduction=reduction,
    )
    assert isinstance(out, da.Array) and out.dtype == np.dtype(dtype)
    got = compute(out)
    if reduction == "none":
        _components_ok(got, _oracle.bce(x, y, dtype, weight=w, pos_weight=pw), "binary_cross_entropy_with_logits", dtype)
    else:
        exact = _oracle.bce_reduced(x, y, dtype, weight=w, pos_weight=pw, reduction=reduction)
        _components_ok(np.asarray([got]), np.asarray([exact]), "binary_cross_entropy_with_logits", dtype)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_lazy_weighted_ignored(compute, reduction: str) -> None:  # noqa: ANN001
    rng = np.random.default_rng(6)
    x = rng.normal(size=(45, 7)) * 30
    t = rng.integers(0, 7, size=45)
    t[::5] = -1
    w = rng.uniform(0.1, 3, size=7)
    out = snn.cross_entropy_with_logits(
        da.from_array(x, chunks=(10, 3)),  # classes split over chunks: rechunked to one
        da.from_array(t, chunks=8),
        weight=da.from_array(w, chunks=4),
        ignore_index=-1,
        label_smoothing=0.05,
        reduction=reduction,
    )
    assert isinstance(out, da.Array)
    got = compute(out)
    exact = _oracle.cross_entropy(x, t, "float64", weight=w, ignore_index=-1, label_smoothing=0.05, reduction=reduction)
    _components_ok(np.atleast_1d(got), np.atleast_1d(exact), "cross_entropy_with_logits", "float64")


def test_cross_entropy_out_of_range_index_is_nan_not_silent(compute) -> None:  # noqa: ANN001
    x = da.from_array(np.zeros((3, 2)), chunks=(2, 2))
    out = compute(snn.cross_entropy_with_logits(x, da.from_array(np.array([0, 5, 1]), chunks=2), reduction="none"))
    assert math.isnan(out[1]) and out[0] == out[2]


def test_cross_entropy_unknown_class_chunks_is_refused() -> None:
    a = da.from_array(np.zeros((2, 6)), chunks=(1, 3))
    logits = a[:, a[0] == 0]  # boolean indexing: the class axis has unknown chunk sizes
    assert math.isnan(logits.shape[1])
    with pytest.raises(ValueError, match=re.escape("`logits` has unknown chunk sizes along axis 1")):
        snn.cross_entropy_with_logits(logits, da.from_array(np.array([0, 1]), chunks=1))


# ---------------------------------------------------------------- importance sampling
def test_importance_weights_on_dask(compute) -> None:  # noqa: ANN001
    rng = np.random.default_rng(7)
    lw = rng.normal(size=500) * 50 - 2000
    r = importance_weights(da.from_array(lw, chunks=64))
    assert all(isinstance(v, da.Array) for v in r)
    weights, log_z, ess = compute(*r)
    _components_ok(weights, _oracle.softmax(lw, "float64"), "softmax", "float64")
    _lse_ok(float(log_z), lw, None, "float64")
    import mpmath

    mpmath.mp.prec = 300
    terms = [mpmath.exp(mpmath.mpf(float(v))) for v in lw]
    exact_ess = float(mpmath.fsum(terms) ** 2 / mpmath.fsum(t * t for t in terms))
    assert float(ulp_distance(float(ess), exact_ess, "float64")) <= 4  # bound: see test_streaming.ESS_ULPS
