"""Item 2 of issue 4: gradient accuracy against mpmath, within the budget table.

Elementwise derivatives come from the audit's oracle (``stablenn.audit._oracle.derivative``,
correctly rounded).  The vector gradients use references written here with the identities
``1 - p_k = sum_{j != k} p_j`` and ``1 - sigma(x) = sigma(-x)``, so that nothing cancels in
mpmath either, and the oracle's own (``softmax_vjp``, ``bce_grad``..., exact sums and one
rounding, so they no longer return 0 where a saturated term is below their working
precision: ``test_oracle_references_are_exact_in_the_tails``).  Budgets:
``budget(f, dtype, kind="grad")``, the same 2 ULP on PyTorch and on JAX.

JAX on the CPU flushes subnormal inputs and results to zero (XLA sets FTZ/DAZ for every
computation; jax-ml/jax#16200): there a gradient is measured against the flushed
reference (exact at the flushed inputs, and an exactly subnormal result may be 0), which
is the platform's rule, not a looser budget.  The full table over thousands of inputs, with
the peers, is ``benchmarks/gradient_audit.py``.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from stablenn._autodiff import gradient_impls
from stablenn.audit import _oracle, _sampler
from stablenn.audit._budgets import budget
from stablenn.audit._ulp import round_mpf, ulp_distance

DTYPES = ["float32", "float64"]
ELEMENTWISE = [
    "sigmoid",
    "tanh",
    "log_sigmoid",
    "softplus",
    "logit",
    "sigmoid_grad",
    "tanh_grad",
    "sigmoid_grad_from_output",
    "tanh_grad_from_output",
    "sigmoid_via_tanh",
    "tanh_via_sigmoid",
]
_KIND = {"logit": "probability", "sigmoid_grad_from_output": "probability", "tanh_grad_from_output": "unit"}


def max_ulp(got: np.ndarray, exact: np.ndarray, dtype: str) -> float:
    keep = np.isfinite(np.asarray(exact, dtype=np.float64))
    got = np.asarray(got, dtype=np.float64)[keep].astype(dtype)
    return float(np.max(ulp_distance(got, np.asarray(exact)[keep], dtype), initial=0.0))


# ---------------------------------------------------------------- references


def _probs(x: np.ndarray) -> list[mpmath.mpf]:
    xs = [mpmath.mpf(float(v)) for v in x]
    m = max(xs)
    t = [mpmath.exp(v - m) for v in xs]
    s = mpmath.fsum(t)
    return [v / s for v in t]


def ref_onehot(name: str, x: np.ndarray, k: int, dtype: str) -> np.ndarray:
    """Row k of the Jacobian: softmax p_k (delta_ik - p_i); log_softmax delta_ik - p_i."""
    with mpmath.workprec(256):
        p = _probs(x)
        rest = mpmath.fsum(p[:k] + p[k + 1 :])  # 1 - p_k, without cancellation
        if name == "softmax":
            vals = [p[k] * rest if i == k else -p[k] * p[i] for i in range(len(p))]
        else:
            vals = [rest if i == k else -p[i] for i in range(len(p))]
        return np.array([round_mpf(v, dtype) for v in vals])


def ref_ce(x: np.ndarray, t: int, dtype: str) -> np.ndarray:
    with mpmath.workprec(256):
        p = _probs(x)
        rest = mpmath.fsum(p[:t] + p[t + 1 :])
        return np.array([round_mpf(-rest if i == t else p[i], dtype) for i in range(len(p))])


def ref_lse(x: np.ndarray, dtype: str) -> np.ndarray:
    with mpmath.workprec(256):
        return np.array([round_mpf(v, dtype) for v in _probs(x)])


def ref_bce(x: float, y: float, dtype: str) -> float:
    """(1 - y) sigma(x) - y sigma(-x), the precision raised until the difference is resolved."""
    prec = 256
    while True:
        with mpmath.workprec(prec):
            a = (1 - mpmath.mpf(y)) / (1 + mpmath.exp(-mpmath.mpf(x)))
            c = mpmath.mpf(y) / (1 + mpmath.exp(mpmath.mpf(x)))
            v = a - c
            if a == 0 or c == 0 or abs(v) > max(a, c) * mpmath.mpf(2) ** (80 - prec) or prec > 1 << 14:
                return 0.0 if v == 0 else round_mpf(v, dtype)
        prec *= 4


def test_references_do_not_cancel() -> None:
    # d softmax_2 / dx_2 at x = (-2.83, 1.70, 738.39): p_2 (1 - p_2) ~ e^-736.7 = 1.16e-320
    # (subnormal); s (g - <g, s>) as written needs over 1000 bits to see it
    x = np.array([-2.82828974, 1.69740612, 738.3875168546126])
    with mpmath.workprec(2000):
        p = _probs(x)
        exact = round_mpf(p[2] * (1 - p[2]), "float64")
    assert exact > 0
    assert ref_onehot("softmax", x, 2, "float64")[2] == exact


# ---------------------------------------------------------------- elementwise


def flush(a: np.ndarray, dtype: str) -> np.ndarray:
    """Subnormals of `dtype` replaced by zeros of their sign: what XLA's FTZ/DAZ reads and writes."""
    a = np.asarray(a)
    sub = (a != 0) & (np.abs(a.astype(np.float64)) < np.finfo(dtype).tiny)
    return np.where(sub, np.copysign(np.zeros_like(a), a), a)


def max_ulp_flushed(got: np.ndarray, exact: np.ndarray, dtype: str) -> float:
    """JAX's rule: the distance to the exact value or to its flushed form, whichever is less."""
    e64 = np.asarray(exact, dtype=np.float64)
    keep = np.isfinite(e64)
    g = np.asarray(got, dtype=np.float64)[keep].astype(dtype)
    e = np.asarray(exact)[keep]
    d = np.minimum(ulp_distance(g, e, dtype), ulp_distance(g, flush(e, dtype), dtype))
    return float(np.max(d, initial=0.0))


@pytest.mark.parametrize("framework", ["stablenn-torch", "stablenn-jax"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_gradients_within_budget(name: str, dtype: str, framework: str) -> None:
    x = _sampler.sample_unary(dtype, 300, seed=11, kind=_KIND.get(name, "real"))
    x = x[np.isfinite(x)]
    limit = budget(name, dtype, kind="grad")
    assert limit is not None
    got = gradient_impls(name)[framework](x)
    if framework == "stablenn-jax":  # measured at the inputs XLA reads (DAZ)
        assert max_ulp_flushed(got, _oracle.derivative(name, flush(x, dtype), dtype), dtype) <= limit
    else:
        assert max_ulp(got, _oracle.derivative(name, x, dtype), dtype) <= limit


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus", "log_sigmoid"])
def test_tails_where_peers_return_zero(name: str, dtype: str) -> None:
    # the saturated tails, dense: from where autograd-from-the-output gives 0 to the end
    top = 100.0 if dtype == "float32" else 700.0
    x = np.concatenate([np.linspace(-top, -8.0, 40), np.linspace(8.0, top, 40)]).astype(dtype)
    exact = _oracle.derivative(name, x, dtype)
    for key in ("stablenn-torch", "stablenn-jax"):
        got = gradient_impls(name)[key](x)
        if key == "stablenn-jax":  # XLA flushes subnormal results to zero on the CPU
            assert max_ulp_flushed(got, exact, dtype) <= budget(name, dtype, kind="grad")  # type: ignore[operator]
        else:
            assert max_ulp(got, exact, dtype) <= budget(name, dtype, kind="grad")  # type: ignore[operator]


# ---------------------------------------------------------------- vectors and losses


def _vectors(dtype: str, n: int, seed: int) -> list[np.ndarray]:
    cases = _sampler.sample_vectors(dtype, n, seed=seed, max_len=40)
    return [c.x for c in cases if np.isfinite(c.x).all()]


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_gradient_within_budget(dtype: str) -> None:
    f = gradient_impls("logsumexp")["stablenn-torch"]
    worst = max(max_ulp(f(x), ref_lse(x, dtype), dtype) for x in _vectors(dtype, 24, 12))
    assert worst <= budget("logsumexp", dtype, kind="grad")  # type: ignore[operator]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_normaliser_jacobian_rows_within_budget(name: str, dtype: str) -> None:
    f = gradient_impls(name)["stablenn-torch"]
    worst = 0.0
    for x in _vectors(dtype, 24, 13):
        for k in {int(np.argmax(x)), int(np.argmin(x))}:
            g = np.zeros_like(x)
            g[k] = 1.0
            worst = max(worst, max_ulp(f(x, g), ref_onehot(name, x, k, dtype), dtype))
    assert worst <= budget(name, dtype, kind="grad")  # type: ignore[operator]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_gradient_within_budget(dtype: str) -> None:
    f = gradient_impls("cross_entropy_with_logits")["stablenn-torch"]
    worst = 0.0
    for x in _vectors(dtype, 24, 14):
        for t in {int(np.argmax(x)), int(np.argmin(x))}:
            worst = max(worst, max_ulp(f(x, np.int64(t)), ref_ce(x, t, dtype), dtype))
    assert worst <= budget("cross_entropy_with_logits", dtype, kind="grad")  # type: ignore[operator]


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_gradient_within_budget(dtype: str) -> None:
    x = _sampler.sample_unary(dtype, 200, seed=15)
    x = x[np.isfinite(x)]
    rng = np.random.default_rng(16)
    f = gradient_impls("binary_cross_entropy_with_logits")["stablenn-torch"]
    for y in (rng.integers(0, 2, size=x.size).astype(dtype), _sampler.sample_labels(dtype, x.size, seed=17)):
        exact = np.array([ref_bce(float(a), float(b), dtype) for a, b in zip(x, y)])
        assert max_ulp(f(x, y), exact, dtype) <= budget("binary_cross_entropy_with_logits", dtype, kind="grad")  # type: ignore[operator]


def test_softmax_dominant_gradient_on_jax_too() -> None:
    # the diagonal of a saturated softmax through jax.grad: JAX transposes our own VJP
    x = np.array([40.0, 0.0, -3.0])
    for name in ("softmax", "log_softmax"):
        g = np.array([1.0, 0.0, 0.0])
        exact = ref_onehot(name, x, 0, "float64")
        got = gradient_impls(name)["stablenn-jax"](x, g)
        assert max_ulp(got, exact, "float64") <= 2
    assert math.isfinite(float(exact[0]))


def _ref_weighted(x: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray:
    with mpmath.workprec(400):
        t = [mpmath.mpf(float(bi)) * mpmath.exp(mpmath.mpf(float(xi))) for xi, bi in zip(x, b)]
        s = mpmath.fsum(t)
        return np.array([round_mpf(v / s, dtype) for v in t])


@pytest.mark.parametrize("framework", ["stablenn-torch", "stablenn-jax"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_gradient_weights_that_cancel_exactly(framework: str, dtype: str) -> None:
    # the +1/-1 terms cancel exactly and S = e^x2: the gradient is (r, -r, 1), r = e^(x0 - x2);
    # a sum that recomputed a "tiny rest" from every other term gave S = 1.63 S
    x = np.array([-17.48584, -17.48584, -16.330368], dtype=dtype)
    b = np.array([1.0, -1.0, 1.0], dtype=dtype)
    got = gradient_impls("logsumexp")[framework](x, b)
    assert max_ulp(got, _ref_weighted(x, b, dtype), dtype) <= 2


@pytest.mark.parametrize("framework", ["stablenn-torch", "stablenn-jax"])
def test_logsumexp_gradient_tiny_weights(framework: str) -> None:
    # weights near 1e-300 times e^-60 underflow unless the weights are rescaled first
    x = np.array([0.0, -56.35922938375658, -3.0, -20.0])
    b = np.array([4.86e-300, -1.0852219996395058e-299, 2.5e-300, -1.4e-300])
    got = gradient_impls("logsumexp")[framework](x, b)
    assert max_ulp(got, _ref_weighted(x, b, "float64"), "float64") <= 2


# ---------------------------------------------------------------- JAX: the vector gradients


def _jax_vectors(dtype: str, seed: int) -> list[np.ndarray]:
    # the sampler's hard vectors (dominant terms, huge gaps, ties), cut to 8 entries: one
    # shape, so JAX compiles once per function and dtype
    cases = _sampler.sample_vectors(dtype, 40, seed=seed, max_len=64)
    out = [c.x[:8] for c in cases if c.x.size >= 8 and np.isfinite(c.x[:8]).all()]
    out.append(np.array([700.0, 0.0, -3.0, 1.0, -700.0, 2.0, 0.5, -1.0], dtype=dtype))  # s_0 (1 - s_0) = e^-700
    return [flush(v, dtype) for v in out]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cross_entropy_with_logits", "logsumexp"])
def test_vector_gradients_on_jax_within_budget(name: str, dtype: str) -> None:
    f = gradient_impls(name)["stablenn-jax"]
    worst = 0.0
    for x in _jax_vectors(dtype, 21):
        if name == "logsumexp":
            worst = max(worst, max_ulp_flushed(f(x), _oracle.logsumexp_grad(x, dtype), dtype))
            continue
        for k in {int(np.argmax(x)), int(np.argmin(x))}:
            if name == "cross_entropy_with_logits":
                got, exact = f(x, np.int64(k)), _oracle.cross_entropy_grad(x, k, dtype)
            else:
                g = np.zeros_like(x)
                g[k] = 1.0
                ref = _oracle.softmax_vjp if name == "softmax" else _oracle.log_softmax_vjp
                got, exact = f(x, g), ref(x, g, dtype)
            worst = max(worst, max_ulp_flushed(got, exact, dtype))
    assert worst <= budget(name, dtype, kind="grad")  # type: ignore[operator]


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_gradient_on_jax_within_budget(dtype: str) -> None:
    x = flush(_sampler.sample_unary(dtype, 200, seed=15), dtype)
    x = x[np.isfinite(x)]
    y = flush(_sampler.sample_labels(dtype, x.size, seed=17), dtype)
    got = gradient_impls("binary_cross_entropy_with_logits")["stablenn-jax"](x, y)
    exact = _oracle.bce_grad(x, y, dtype)
    assert max_ulp_flushed(got, exact, dtype) <= budget("binary_cross_entropy_with_logits", dtype, kind="grad")  # type: ignore[operator]


def test_oracle_references_are_exact_in_the_tails() -> None:
    # where a probability saturates, g - <g, s>, 1 - p and sigma(x) - y are below any fixed
    # working precision; the oracle's exact sums keep them (values from mpmath at 2000 bits)
    x = np.array([-2.82828974, 1.69740612, 738.3875168546126])
    with mpmath.workprec(2000):
        p = _probs(x)
        diag = round_mpf(p[2] * (1 - p[2]), "float64")  # ~ e^-736.7, subnormal
        ce = round_mpf(-(1 - p[2]), "float64")
    g = np.array([0.0, 0.0, 1.0])
    assert diag > 0 and _oracle.softmax_vjp(x, g, "float64")[2] == diag
    assert _oracle.log_softmax_vjp(x, g, "float64")[2] == ce * -1
    assert _oracle.cross_entropy_grad(x, 2, "float64")[2] == ce
    with mpmath.workprec(2000):  # d BCE / dx at x = 700, y = 1: -sigma(-700) = -e^-700 / (1 + e^-700)
        bce = round_mpf(-1 / (1 + mpmath.exp(700)), "float64")
    assert bce < 0 and _oracle.bce_grad(np.array([700.0]), np.array([1.0]), "float64")[0] == bce
