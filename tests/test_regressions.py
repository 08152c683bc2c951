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
