"""Fuzz: random shapes (empty ones included), dtypes, axes, weights, labels and special
values mixed into ordinary ones.  Every call either raises one of the documented
exceptions (TypeError, ValueError, IndexError, naming an argument in backticks) or returns
an array of the promised shape and dtype, which on small cases agrees with the mpmath
oracle on where the answer is finite, infinite (with its sign) or NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import stablenn as snn
from stablenn.audit import _oracle

DTYPES = ("float16", "float32", "float64")
SPECIALS = (0.0, -0.0, math.inf, -math.inf, math.nan)
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ELEMENTWISE = (
    "sigmoid", "log_sigmoid", "softplus", "logit", "tanh", "sigmoid_grad", "tanh_grad",
    "sigmoid_grad_from_output", "tanh_grad_from_output",
)


def _values(dtype: str):
    info = np.finfo(dtype)
    ordinary = st.floats(-float(info.max), float(info.max), allow_nan=False, allow_infinity=False, width=64)
    scaled = st.floats(-60, 60, allow_nan=False, width=64)
    return st.one_of(ordinary, scaled, scaled, st.sampled_from(SPECIALS + (float(info.max), -float(info.max), float(info.smallest_subnormal))))


@st.composite
def arrays(draw, dtype: str, min_dims: int = 0, max_side: int = 4):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=0, max_side=max_side))
    data = draw(hnp.arrays(np.float64, shape, elements=_values(dtype)))
    with np.errstate(over="ignore"):
        return data.astype(dtype)


def _agree(got: np.ndarray, exact: np.ndarray) -> None:
    got = np.asarray(got, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    assert got.shape == exact.shape
    assert np.array_equal(np.isnan(got), np.isnan(exact)), (got, exact)
    fin = np.isfinite(exact)
    assert np.all(np.isfinite(got[fin])), (got, exact)
    inf = np.isinf(exact)
    assert np.array_equal(got[inf], exact[inf]), (got, exact)


def _documented(exc: Exception) -> None:
    assert isinstance(exc, (TypeError, ValueError, IndexError)), repr(exc)
    assert "`" in str(exc), str(exc)


@FUZZ
@given(st.data())
def test_elementwise_fuzz(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    name = data.draw(st.sampled_from(ELEMENTWISE))
    x = data.draw(arrays(dtype, max_side=3))
    y = getattr(snn, name)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    if x.size <= 12:
        _agree(y, _oracle.elementwise(name, x, dtype))


@FUZZ
@given(st.data())
def test_reduction_fuzz(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    x = data.draw(arrays(dtype, min_dims=0, max_side=4))
    axis = data.draw(st.one_of(st.none(), st.integers(-4, 4), st.tuples(st.integers(-3, 3), st.integers(-3, 3))))
    use_b = data.draw(st.booleans())
    b = None
    if use_b:
        b = data.draw(hnp.arrays(np.float64, x.shape, elements=st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-300, 3.0]))).astype(dtype)
    kind = data.draw(st.sampled_from(["logsumexp", "softmax", "log_softmax"]))
    try:
        if kind == "logsumexp":
            res, sign = snn.logsumexp(x, axis=axis, b=b, return_sign=True)
        else:
            res = getattr(snn, kind)(x, axis=axis)
    except (TypeError, ValueError, IndexError) as exc:
        _documented(exc)
        return
    assert res.dtype == x.dtype
    if kind != "logsumexp":
        assert res.shape == x.shape
    if x.ndim == 1 and x.size <= 12 and axis in (0, -1, None):
        if kind == "logsumexp":
            want, want_sign = _oracle.logsumexp(x, dtype, b)
            _agree(np.reshape(res, ()), np.asarray(want))
        elif x.size:
            _agree(res, getattr(_oracle, kind)(x, dtype))


@FUZZ
@given(st.data())
def test_bce_fuzz(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    x = data.draw(arrays(dtype, min_dims=0, max_side=4))
    labels = st.sampled_from([0.0, 1.0, 0.5, 1e-8, 1 - 1e-8, 0.25, math.nan])
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=labels)).astype(dtype)
    weight = data.draw(st.none() | hnp.arrays(np.float64, x.shape[-1:] if x.ndim else (), elements=st.sampled_from([0.0, 1.0, 2.0])))
    reduction = data.draw(st.sampled_from(["none", "mean", "sum"]))
    res = snn.binary_cross_entropy_with_logits(x, y, weight=None if weight is None else weight.astype(dtype), reduction=reduction)
    assert res.dtype == x.dtype
    if reduction == "none" and x.size <= 12:
        _agree(res, _oracle.bce(x, y, dtype, weight=weight))


@FUZZ
@given(st.data())
def test_cross_entropy_fuzz(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    n = data.draw(st.integers(0, 4))
    c = data.draw(st.integers(0, 5))
    x = data.draw(hnp.arrays(np.float64, (n, c), elements=_values(dtype)))
    with np.errstate(over="ignore"):
        x = x.astype(dtype)
    probs = data.draw(st.booleans())
    ignore = data.draw(st.sampled_from([None, -100, 0]))
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 1.0, -0.5]))
    reduction = data.draw(st.sampled_from(["none", "mean", "sum"]))
    if probs:
        t = data.draw(hnp.arrays(np.float64, (n, c), elements=st.sampled_from([0.0, 1.0, 0.5, 0.25]))).astype(dtype)
    else:
        t = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(-100, max(c, 1))))
    try:
        res = snn.cross_entropy_with_logits(x, t, ignore_index=ignore, label_smoothing=smoothing, reduction=reduction)
    except (TypeError, ValueError, IndexError) as exc:
        _documented(exc)
        return
    assert res.dtype == x.dtype
    if reduction == "none" and n and c:
        kw = {} if probs else {"ignore_index": ignore}
        want = _oracle.cross_entropy(x, t, dtype, label_smoothing=smoothing, reduction="none", **kw)
        _agree(res, want)


@pytest.mark.parametrize("bad", [None, "x", [1.0], 3, 2.5, object()])
def test_non_arrays_are_documented_errors(bad):
    for func in (snn.sigmoid, snn.softmax, snn.logsumexp):
        with pytest.raises(TypeError) as info:
            func(bad)
        _documented(info.value)
