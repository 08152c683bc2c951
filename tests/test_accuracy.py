"""Accuracy of every public function against the mpmath oracle, within the budget table.

Each test measures one function in one dtype on one backend (`stablenn.audit._measure`):
inputs from `stablenn.audit._sampler`, correctly rounded references from
`stablenn.audit._oracle`, budgets from `stablenn.audit._budgets` (never restated here).
A failure message names the worst input, the value got and the exact value.

Sample counts, sized for about 3 minutes for this file on 2 cores:

* NumPy in float16, float32 and float64, PyTorch in bfloat16 (NumPy has none): 20,000
  scalar inputs per elementwise function; 1,000 vectors (lengths 1 to 1,000, every
  kind of `sample_vectors`) per reduction; 20,000 elements for binary cross-entropy and
  1,000 rows for cross-entropy, each batch also reduced with ``"mean"`` and ``"sum"``;
* PyTorch, JAX (64-bit mode, from tests/conftest.py), array-api-strict and Dask, in
  every dtype they have: 2,000 scalars, 100 vectors, 2,000 elements, 100 rows (48 on
  Dask).  JAX
  compiles for every new shape (eagerly: every operation) and Dask builds a graph per
  call, so on these two the vectors and batches come in few shapes
  (`_sampler.FEW_LENGTHS`, vectors stacked into 2-D calls, chunked on Dask); on JAX the
  elementwise functions and reductions run under ``jax.jit`` and the losses eagerly
  (see `stablenn.audit._measure.measure`), and the reductions and losses run in float32
  and float64 only.

The full measurement (20,000 vectors and rows per dtype) is ``benchmarks/accuracy.py``.

On JAX the platform rule of XLA on the CPU applies (flush-to-zero and denormals-are-zero
for every computation): subnormal inputs are flushed before the reference is computed, and
a zero of the right sign is accepted where the exact result is subnormal
(`stablenn.audit._measure.flush`); everything else is held to the same budgets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import stablenn
from stablenn.audit import _budgets, _measure, _oracle, _sampler
from stablenn.audit._ulp import from_ordinal, get_format, ordinal, round_mpf, to_storage, ulp_distance

MAIN = {"elementwise": 20000, "reduction": 1000, "binary": 20000, "cross": 1000}
SMALL = {"elementwise": 2000, "reduction": 100, "binary": 2000, "cross": 100}
_GROUP = {
    **{f: "elementwise" for f in _oracle.ELEMENTWISE},
    **{f: "reduction" for f in _oracle.REDUCTIONS},
    "binary_cross_entropy_with_logits": "binary",
    "cross_entropy_with_logits": "cross",
}
_BACKEND_DTYPES = {
    "torch": ("float16", "bfloat16", "float32", "float64"),
    "jax": ("float16", "bfloat16", "float32", "float64"),
    "array_api_strict": ("float32", "float64"),
    "dask": ("float16", "float32", "float64"),
}


def _cases() -> list[tuple[str, str, str, int]]:
    out = []
    for f in _budgets.BUDGETED:
        for d in ("float16", "float32", "float64"):
            out.append((f, d, "numpy", MAIN[_GROUP[f]]))
        out.append((f, "bfloat16", "torch", MAIN[_GROUP[f]]))
    for backend, dtypes in _BACKEND_DTYPES.items():
        for f in _budgets.BUDGETED:
            for d in dtypes:
                if backend == "torch" and d == "bfloat16":
                    continue  # measured above with the main sample
                if backend == "jax" and _GROUP[f] != "elementwise" and d in ("float16", "bfloat16"):
                    continue  # eager JAX compiles every operation per shape: see the docstring
                n = SMALL[_GROUP[f]]
                if backend == "dask" and _GROUP[f] == "cross":
                    n = 48  # three batches of 16 rows: each Dask call takes seconds
                out.append((f, d, backend, n))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("function", "dtype", "backend", "samples"),
    _cases(),
    ids=lambda v: str(v),
)
def test_error_within_budget(function: str, dtype: str, backend: str, samples: int) -> None:
    r = _measure.measure(function, dtype, samples=samples, seed=0, backend=backend)
    assert r.count >= samples
    assert r.ok, r.describe_worst()
    assert r.nan_where_finite == 0 and r.inf_where_finite == 0, r.describe_worst()


# ---------------------------------------------------------------- documentation-only functions


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("function", list(_budgets.DOCUMENTATION_ONLY))
def test_documentation_functions_match_their_measured_figure(function: str, dtype: str) -> None:
    # No budget: the figure in MEASURED (benchmarks/accuracy.py, same seed and count) is
    # what their docstrings state; special values are still the documented ones.
    backend = "torch" if dtype == "bfloat16" else "numpy"
    r = _measure.measure(function, dtype, samples=MAIN["elementwise"], seed=0, backend=backend)
    assert r.wrong_special == 0, r.describe_worst()
    assert r.nan_where_finite == 0 and r.inf_where_finite == 0, r.describe_worst()
    figure = _budgets.MEASURED.get((function, dtype))
    assert figure is not None, f"no measured figure for {function} {dtype}: run benchmarks/accuracy.py"
    assert r.max_ulp <= figure, r.describe_worst()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize(
    ("grad_from_output", "forward", "grad"),
    [
        ("sigmoid_grad_from_output", "sigmoid", "sigmoid_grad"),
        ("tanh_grad_from_output", "tanh", "tanh_grad"),
    ],
)
def test_from_output_loses_every_digit_from_the_documented_limit(
    grad_from_output: str, forward: str, grad: str, dtype: str
) -> None:
    # From FROM_OUTPUT_LOSS[...]["all_digits_lost_from"] on, the correctly rounded f(x)
    # is 1 and the derivative from that output is exactly 0 while the true derivative is
    # positive; the float just below the limit still gives a nonzero derivative.  (The
    # outputs come from the oracle: a forward function within its 1-ULP budget may round
    # to 1 a little earlier or later.)
    fmt = get_format(dtype)
    limit = _budgets.FROM_OUTPUT_LOSS[(grad_from_output, dtype)]["all_digits_lost_from"]
    first = to_storage(np.array([round_mpf(np.float64(limit), dtype)]), dtype)
    if float(first[0]) < limit:  # (a Python float would be narrowed to the dtype by NEP 50)
        first = from_ordinal(ordinal(first, dtype) + 1, dtype)
    o = int(ordinal(first, dtype)[0])
    beyond = from_ordinal(np.arange(o, o + 50), dtype).astype(fmt.storage)
    y = _oracle.elementwise(forward, beyond, dtype)
    assert (getattr(stablenn, grad_from_output)(y) == 0).all()
    assert (_oracle.elementwise(grad, beyond, dtype) > 0).all()
    below = from_ordinal(np.array([o - 1]), dtype).astype(fmt.storage)
    assert (getattr(stablenn, grad_from_output)(_oracle.elementwise(forward, below, dtype)) > 0).all()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_from_output_keeps_relative_accuracy_in_the_documented_range(dtype: str) -> None:
    # sigmoid: x <= 0 (y <= 1/2); tanh: |x| <= 1/2.  Within 2 ULP of the true derivative.
    x = _sampler.sample_unary(dtype, 5000, seed=3)
    x = x[np.isfinite(x.astype(np.float64))]
    neg = x[x <= 0]
    got = stablenn.sigmoid_grad_from_output(stablenn.sigmoid(neg))
    ulps = ulp_distance(got, _oracle.elementwise("sigmoid_grad", neg, dtype), dtype)
    assert ulps.max() <= 2, neg[np.argmax(ulps)]
    small = x[np.abs(x) <= 0.5]
    got = stablenn.tanh_grad_from_output(stablenn.tanh(small))
    ulps = ulp_distance(got, _oracle.elementwise("tanh_grad", small, dtype), dtype)
    assert ulps.max() <= 2, small[np.argmax(ulps)]


# ---------------------------------------------------------------- regressions the audit found


def test_logsumexp_of_an_exact_cancellation_is_minus_inf_with_sign_zero() -> None:
    # b = +1 and -1 on equal x: the sum is exactly 0 (oracle: grouped exact weights).
    x = np.array([-0.25, -0.25, 0.5, 0.5])
    b = np.array([1.0, -1.0, -1.0, 1.0])
    value, sign = stablenn.logsumexp(x, b=b, return_sign=True)
    assert (float(value), float(sign)) == _oracle.logsumexp(x, "float64", b=b) == (-math.inf, 0.0)
