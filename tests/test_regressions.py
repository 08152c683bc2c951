"""Regression tests, each named after what broke.  Expected values come from mpmath; the
line that produced each is in the comment beside it."""

from __future__ import annotations

import numpy as np
import pytest

import stablenn as snn

# float(mpmath.log1p(mpmath.exp(-40))) = 4.248354255291589e-18; in float32 4.2483541e-18
LOG1P_EXP_M40 = 4.248354255291589e-18


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_wide_path_keeps_the_small_terms_beside_the_dominant_one(dtype):
    # float32 computed in float64 once summed 1 + 4e-18 to 1 and returned 0 for the dominant
    # component of log_softmax and for cross-entropy at the argmax
    x = np.array([0.0, -40.0], dtype=dtype)
    want = np.asarray(-LOG1P_EXP_M40).astype(dtype)
    if want == 0:  # float16 cannot hold 4e-18: its answer is -0 rounded, i.e. 0
        assert snn.log_softmax(x)[0] == 0
        return
    assert snn.log_softmax(x)[0] == want
    assert snn.logsumexp(x) == -want
    ce = snn.cross_entropy_with_logits(x[None, :], np.array([0]), reduction="none")
    assert ce[0] == -want


@pytest.mark.parametrize("n_rows", [1, 2000])  # the plain path, and the blocked plain path
def test_huge_range_where_x_minus_max_overflows(n_rows):
    # x - max(x) = -2e308 overflows to -inf: the exact log-softmax there is below the
    # largest float, so -inf; it once gave NaN (inf - inf in the error-free subtraction).
    # mpmath: log_softmax([1e308, -1e308, 0]) = [-0, -2e308 (rounds to -inf), -1e308]
    from stablenn import _dispatch

    x = np.tile(np.array([1e308, -1e308, 0.0]), (n_rows, 1))
    with _dispatch.plain_only():  # the compiled CPU path still returns NaN here (open)
        _check_huge_range(x, n_rows)


def _check_huge_range(x, n_rows):
    ls = snn.log_softmax(x)
    assert np.all(ls[:, 1] == -np.inf) and np.all(ls[:, 2] == -1e308) and np.all(ls[:, 0] == 0)
    np.testing.assert_array_equal(snn.softmax(x)[0], [1.0, 0.0, 0.0])
    assert np.all(snn.logsumexp(x, axis=1) == 1e308)
    ce = snn.cross_entropy_with_logits(x, np.ones(n_rows, dtype=np.int64), reduction="none")
    assert np.all(ce == np.inf)


def test_tanh_grad_rounds_once_where_its_exponential_is_subnormal():
    # float(4 * mpmath.exp(-744) / (1 + mpmath.exp(-744))**2) = 3e-323 (6 subnormal units);
    # 4 * fl(exp(-744)) gave 4e-323
    assert snn.tanh_grad(np.array([372.0]))[0] == 3e-323
