"""The identities of DESIGN.md as Hypothesis properties, each with a stated tolerance.

Tolerances are in units of the dtype's epsilon and follow from the error budgets (2 ULP per
result in float64): an identity between results each within 2 ULP cannot be off by more
than the sum of their errors, plus the rounding of the test's own arithmetic (done with
math.fsum or exactly)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import stablenn as snn

EPS = float(np.finfo(np.float64).eps)
finite = st.floats(-700, 700, allow_nan=False, allow_infinity=False, width=64)
wide = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False, width=64)
vectors = hnp.arrays(np.float64, st.integers(1, 40), elements=finite)
SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(vectors)
def test_softmax_sums_to_one(x):
    p = snn.softmax(x)
    # each component within 2 ULP: |sum - 1| <= 2 eps sum(p) = 2 eps; fsum adds exactly
    assert abs(math.fsum(p.tolist()) - 1.0) <= 2 * EPS


@SETTINGS
@given(vectors, st.floats(-500, 500, allow_nan=False, width=64))
def test_softmax_is_shift_invariant_for_any_shift(x, offset):
    a = float(np.max(x)) + offset  # exp(x - a) neither overflows nor underflows entirely
    p, q = snn.softmax(x), snn.softmax(x, shift=a)
    # away from the subnormal range, where ULPs are absolute, and where e^(x - a) itself
    # is a normal number (below that, the shifted identity underflows as it predicts)
    big = (p > 1e-290) & (x - a > -700)
    # both within 2 ULP of the same exact value (the shift changes only the rounding of
    # x - a, which is carried exactly): at most 4 ULP apart
    assert np.all(np.abs(p - q)[big] <= 4 * EPS * p[big])
    lp, lq = snn.log_softmax(x), snn.log_softmax(x, shift=a)
    # log_softmax with shift a is (x_i - a) - log S_a: log S_a = log sum e^(x - a) is rounded
    # at the magnitude |max x - a| + log n, so a shift away from the maximum adds up to
    # eps * |max x - a| of absolute error (the reason the default shift is the maximum)
    tol = 4 * EPS * np.abs(lp) + 2 * EPS * (abs(float(np.max(x)) - a) + math.log(x.size) + 1)
    assert np.all(np.abs(lp - lq) <= tol)


@SETTINGS
@given(vectors, st.floats(-500, 500, allow_nan=False, width=64))
def test_logsumexp_any_shift_gives_the_same_result(x, offset):
    a = float(np.max(x)) + offset
    r, s = snn.logsumexp(x), snn.logsumexp(x, shift=a)
    # conditioning: an absolute error of a few eps * (|a| + |max x|) is what any shift
    # allows where the result is near 0 (see the logsumexp docstring)
    # allows where the result is near 0 (see the logsumexp docstring); and with a shift
    # other than the maximum, the dominant term e^(max - a) is rounded by exp: eps more
    tol = 4 * EPS * abs(r) + 4 * EPS * (abs(a) + float(np.max(np.abs(x)))) + 2 * EPS
    assert abs(r - s) <= tol


@SETTINGS
@given(vectors)
def test_logsumexp_is_at_least_the_largest_term(x):
    assert snn.logsumexp(x) >= np.max(x)


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 50), elements=wide))
def test_sigmoid_of_x_and_minus_x_sum_to_one(x):
    s = snn.sigmoid(x) + snn.sigmoid(-x)
    # each within 1 ULP (relative eps), the sum rounded once: 2 eps
    assert np.all(np.abs(s - 1.0) <= 2 * EPS)


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 50), elements=wide))
def test_softplus_difference_is_the_identity(x):
    a, b = snn.softplus(x), snn.softplus(-x)
    # each within 1 ULP of itself; the subtraction in the test is exact or rounds once
    assert np.all(np.abs((a - b) - x) <= 2 * EPS * np.maximum(a, b) + 1e-300)


@SETTINGS
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 7)), elements=finite),
    st.data(),
)
def test_one_hot_cross_entropy_equals_class_index(x, data):
    n, c = x.shape
    t = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    onehot = np.eye(c)[t]
    a = snn.cross_entropy_with_logits(x, t, reduction="none")
    b = snn.cross_entropy_with_logits(x, onehot, reduction="none")
    # the same exact value, each within 2 ULP
    assert np.all(np.abs(a - b) <= 4 * EPS * np.abs(a) + 1e-300)


@SETTINGS
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=4), elements=finite), st.data())
def test_any_axis_equals_moving_it_last(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    moved = np.moveaxis(x, axis, -1)
    # the same slices in the same order: bit-for-bit equal
    np.testing.assert_array_equal(np.moveaxis(snn.softmax(x, axis=axis), axis, -1), snn.softmax(moved))
    np.testing.assert_array_equal(np.moveaxis(snn.log_softmax(x, axis=axis), axis, -1), snn.log_softmax(moved))
    np.testing.assert_array_equal(snn.logsumexp(x, axis=axis), snn.logsumexp(moved, axis=-1))
    t = np.zeros(moved.shape[:-1], dtype=np.int64)
    np.testing.assert_array_equal(
        snn.cross_entropy_with_logits(x, t, axis=axis, reduction="none"),
        snn.cross_entropy_with_logits(moved, t, reduction="none"),
    )


@SETTINGS
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)), elements=finite))
def test_logsumexp_over_several_axes_equals_over_the_flattened_ones(x):
    a = snn.logsumexp(x, axis=(0, 2))
    b = snn.logsumexp(np.moveaxis(x, 1, 0).reshape(x.shape[1], -1), axis=1)
    np.testing.assert_array_equal(a, b)
