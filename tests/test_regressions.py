"""Regression tests, each named after what broke.  Expected values come from mpmath; the
line that produced each is in the comment beside it."""

from __future__ import annotations

import contextlib

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


# ---------------------------------------------------------------- losses (session 2)


def test_label_smoothing_sum_that_overflows_while_the_loss_does_not():
    # sum_c -log p_c = 1.8e308 overflows; eps / C times it is finite.  Once inf (fuzz case).
    # mpmath (prec 300): 0.9 * nll_0 + 0.1 / 3 * sum(nll) = 5.992310446666666e+306
    x = np.array([[8.98846567e307, 0.0, 0.0]])
    got = snn.cross_entropy_with_logits(x, np.array([0]), label_smoothing=0.1, reduction="none")
    assert got[0] == 5.992310446666666e306


def test_mean_of_losses_whose_sum_overflows():
    # weighted losses 3e308 each (beyond the largest float) whose mean is finite; once inf.
    # mpmath: sum(w * softplus(x)) / 4 over x = [1.5e308, 1.5e308, 0, 0], w = [2, 2, 1, 1] = 1.5e308
    x = np.array([1.5e308, 1.5e308, 0.0, 0.0])
    w = np.array([2.0, 2.0, 1.0, 1.0])
    assert snn.binary_cross_entropy_with_logits(x, np.zeros(4), weight=w) == 1.5e308
    assert snn.binary_cross_entropy_with_logits(x, np.zeros(4), weight=w, reduction="sum") == np.inf


@pytest.mark.parametrize(
    ("logit", "target", "kw", "want"),
    [
        # mpmath: 6.24 * softplus(-744.44) = 3e-323 (PyTorch's exp lost the subnormal: 0)
        (-744.44, 0.0, {"weight": 6.24}, 3e-323),
        # mpmath: 4.315995223645624 * log1p(exp(-709.7827128933852)) = 2.4008520363910093e-308
        (709.7827128933852, 1.0, {"pos_weight": 4.315995223645624}, 2.4008520363910093e-308),
        # mpmath: 5.805891310148398 * log1p(exp(-1.0000000000000095)) = 1.818763309364458
        (1.0000000000000095, 1.0, {"weight": 5.805891310148398}, 1.818763309364458),
    ],
)
def test_weighted_bce_rounds_once(backend, logit, target, kw, want):
    # a weight above 1 magnified the rounding of exp and log1p (2 ULP), or of a subnormal
    # tail (10 ULP on PyTorch); the tail is now a double-double, the deep tail scaled by 2**64
    args = {k: backend.asarray(np.array([v])) for k, v in kw.items()}
    got = snn.binary_cross_entropy_with_logits(
        backend.asarray(np.array([logit])), backend.asarray(np.array([target])), reduction="none", **args
    )
    if backend.name == "jax" and want < np.finfo(np.float64).tiny:
        want = 0.0  # XLA on the CPU flushes subnormal results (platform rule, README)
    assert float(backend.numpy(got)[0]) == want


def test_label_smoothing_where_x_minus_max_overflows():
    # -log p_1 = 3e308 is beyond the largest float; eps / C times the sum is not.  Once inf.
    # mpmath (prec 3000): 0.1/3 * sum(L - x_c) = 1.5000000000000002e+307 over x = [1.5e308, -1.5e308, 0]
    from stablenn import _dispatch

    x = np.array([[1.5e308, -1.5e308, 0.0]])
    for plain in (True, False):
        with _dispatch.plain_only() if plain else contextlib.nullcontext():
            got = snn.cross_entropy_with_logits(x, np.array([0]), label_smoothing=0.1, reduction="none")[0]
        assert abs(got - 1.5000000000000002e307) <= 2 * np.spacing(1.5e307)  # budget: 2 ULP


def test_mean_whose_sum_is_the_largest_float():
    # the sum 1.797e308 is finite but the division's check product q * n overflowed: NaN.
    # mpmath: (1.7976931348623157e308 + log(2)) / 2 = 8.988465674311579e+307
    from stablenn import _dispatch

    with _dispatch.plain_only():
        got = snn.binary_cross_entropy_with_logits(np.array([1.7976931348623157e308, 0.0]), np.zeros(2))
    assert got == 8.988465674311579e307


def test_error_free_transformations_stay_exact_under_jax_jit():
    # XLA's simplifier turned (1 + b) - 1 into b, so TwoSum and Fast2Sum with a constant
    # first operand returned an error term of 0, and its fusion pass copied Dekker's rounded
    # product into consumers where LLVM contracted it into an FMA: jitted float64 sigmoid,
    # logit, sigmoid_grad were 2 ULP off, tanh_grad 3.  The truth is exact rational
    # arithmetic on the values returned.
    import jax
    import jax.numpy as jnp
    from fractions import Fraction

    from stablenn._kernels import _dd

    def parts(a):
        # computed values (the barrier makes the copies returned here the ones used below)
        b, c = jax.lax.optimization_barrier((jnp.sin(a) * 1e-3, a * 0.77))
        s, e = _dd.two_sum(jnp.ones_like(a), b)
        f, g = _dd.fast_two_sum(jnp.ones_like(a), b)
        p, q = _dd.two_prod(jnp, c, b, guard=False)
        h, l = _dd.two_prod(jnp, c, jnp.full_like(a, 0.1))
        return b, c, s, e, f, g, p, q, h, l

    x = np.random.default_rng(0).uniform(-30.0, 30.0, 2000)
    out = jax.jit(parts)(jnp.asarray(x, dtype=jnp.float64))
    b, c, s, e, f, g, p, q, h, l = (np.asarray(v) for v in out)
    assert b.dtype == np.float64
    for i in range(0, x.size, 7):
        bi, ci = Fraction(b[i]), Fraction(c[i])
        assert Fraction(s[i]) + Fraction(e[i]) == 1 + bi and s[i] == 1.0 + b[i]
        assert Fraction(f[i]) + Fraction(g[i]) == 1 + bi
        assert Fraction(p[i]) + Fraction(q[i]) == ci * bi and p[i] == c[i] * b[i]
        assert Fraction(h[i]) + Fraction(l[i]) == ci * Fraction(0.1)


def test_jitted_tanh_grad_keeps_its_double_double_square():
    # XLA's fusion copied Dekker's rounded product into ah*bh - p, where LLVM contracted it
    # into an FMA: the low part of (1 + e)**2 was wrong and jitted float64 tanh_grad was
    # 2 ULP off here.  mpmath.mp.prec = 200: float(1 - mpmath.tanh(x)**2)
    import jax
    import jax.numpy as jnp

    got = float(jax.jit(snn.tanh_grad)(jnp.asarray([-0.92210926229009], dtype=jnp.float64))[0])
    assert abs(got - 0.47162551570196426) <= np.spacing(0.47162551570196426)


def test_loss_means_whose_single_losses_overflow_on_every_backend(backend):
    # weighted losses beyond the largest float whose mean is finite: JAX and Dask, whose
    # values are not read, kept the inf (found by benchmarks/accuracy.py --backend jax)
    import mpmath

    mpmath.mp.prec = 3000
    big = 1.5e308
    b = backend.asarray
    ln2 = mpmath.log(2)

    def nll(logits, c):  # -log softmax(logits)[c], exactly
        xs = [mpmath.mpf(v) for v in logits]
        return mpmath.log(sum(mpmath.exp(v - xs[c]) for v in xs))

    def check(got, exact):
        assert abs(float(backend.numpy(got)) - float(exact)) <= 2 * np.spacing(float(exact))

    # BCE: mean of [2 softplus(1.5e308)] * 2 and [softplus(0)] * 2 over 4 elements
    x, w = np.array([big, big, 0.0, 0.0]), np.array([2.0, 2.0, 1.0, 1.0])
    check(snn.binary_cross_entropy_with_logits(b(x), b(np.zeros(4)), weight=b(w)), (4 * mpmath.mpf(big) + 2 * ln2) / 4)
    # cross-entropy, class indices: weighted mean (2 nll + nll') / (2 + 1)
    logits, weight = np.array([[big, 0.0], [0.0, 0.0]]), np.array([1.0, 2.0])
    got = snn.cross_entropy_with_logits(b(logits), b(np.array([1, 0])), weight=b(weight))
    check(got, (2 * nll(logits[0], 1) + nll(logits[1], 0)) / 3)
    # cross-entropy, class probabilities: mean over the two rows
    probs = np.array([[0.0, 1.0], [1.0, 0.0]])
    got = snn.cross_entropy_with_logits(b(logits), b(probs), weight=b(weight))
    check(got, (2 * nll(logits[0], 1) + nll(logits[1], 0)) / 2)


def test_streaming_loss_means_whose_single_losses_overflow(backend):
    # the running totals of stablenn.streaming summed the inf of a single loss beyond the
    # largest float; each batch is now rescued at 2**-64 like the one-shot functions
    import mpmath

    from stablenn import streaming

    mpmath.mp.prec = 3000
    big = 1.5e308
    b = backend.asarray

    def check(got, exact):
        if backend.name == "dask":
            # open: the lazy graph of a streaming update runs NumPy outside stablenn, so its
            # overflow warnings (the plain sum, computed beside the rescued one) escape at
            # compute(); the value is right
            with pytest.warns(RuntimeWarning):
                value = float(backend.numpy(got))
        else:
            value = float(backend.numpy(got))
        assert abs(value - float(exact)) <= 2 * np.spacing(float(exact))

    acc = streaming.BinaryCrossEntropyWithLogits()
    acc.update(b(np.array([big, 0.0])), b(np.zeros(2)), weight=b(np.array([2.0, 1.0])))
    acc.update(b(np.array([big, 0.0])), b(np.zeros(2)), weight=b(np.array([2.0, 1.0])))
    check(acc.result(), (4 * mpmath.mpf(big) + 2 * mpmath.log(2)) / 4)
    logits = np.array([[big, 0.0], [0.0, 0.0]])
    ce = streaming.CrossEntropyWithLogits(weight=b(np.array([1.0, 2.0])))
    ce.update(b(logits), b(np.array([[0.0, 1.0], [1.0, 0.0]])))
    nll = mpmath.mpf(big) + mpmath.log1p(mpmath.exp(-mpmath.mpf(big)))  # -log softmax(logits[0])[1]
    check(ce.result(), (2 * nll + mpmath.log(2)) / 2)
