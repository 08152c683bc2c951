"""Gradient accuracy of stablenn and its peers against mpmath: the table of issue 4.

For every differentiable function and for float32 and float64, sample inputs with the
audit's sampler, compute the correctly rounded exact gradient with the audit's mpmath
oracle, and report the largest ULP distance of each implementation of
``stablenn._autodiff.gradient_impls``: stablenn through PyTorch autograd and through
``jax.grad``, and the peers' own functions (PyTorch, JAX).

Inputs:

* elementwise: ``sample_unary`` (every exponent, the hard regions, the special values);
* logsumexp: ``sample_vectors`` (with weights);
* softmax, log_softmax: ``sample_vectors``, cotangent one-hot (each row of the Jacobian: the
  gradient of one output component, where ``y_i (1 - y_i)`` and ``1 - p_i`` cancel in every
  peer);
* binary cross-entropy: logits from ``sample_unary``, hard and soft labels;
* cross-entropy: rows from ``sample_vectors``, class-index targets (the argmax included).

Entries whose exact gradient is not finite, and vector cases holding NaN or infinities,
are left to the special-value tests (tests/test_gradients_special.py).

Run: ``python benchmarks/gradient_audit.py [--samples N] [--vectors M]`` (JAX with 64-bit
floats).  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

from stablenn._autodiff import gradient_impls  # noqa: E402
from stablenn._autodiff._impls import ELEMENTWISE  # noqa: E402
from stablenn.audit import _oracle, _sampler  # noqa: E402
from stablenn.audit._ulp import round_mpf, ulp_distance  # noqa: E402

import mpmath  # noqa: E402

# ---------------------------------------------------------------- cancellation-free references
#
# The oracle's vector gradients (softmax_vjp, log_softmax_vjp, cross_entropy_grad,
# bce_grad) evaluate s_i (g_i - sum_j g_j s_j), p - onehot and sigma(x) - y as written and
# accept a value once two precisions agree.  Where a saturated probability makes the
# difference smaller than 2**-precision (1 - p with p = 1 - e^-720, say) both precisions
# give exactly 0 and the oracle "decides" 0 while the true value is e^-720.  The references
# below use the identities 1 - p_k = sum_{j != k} p_j and 1 - sigma(x) = sigma(-x), so
# nothing cancels, and widen the precision until a difference that can cancel (soft labels,
# signed weights) is resolved.  Each is rounded once with the audit's exact rounding.


def _mp_probs(x: np.ndarray, b: np.ndarray | None, prec: int) -> tuple[list, object]:
    with mpmath.workprec(prec):
        xs = [mpmath.mpf(float(v)) for v in x]
        bs = [mpmath.mpf(1)] * len(xs) if b is None else [mpmath.mpf(float(v)) for v in b]
        m = max(xi for xi, bi in zip(xs, bs) if bi != 0)
        terms = [bi * mpmath.exp(xi - m) for xi, bi in zip(xs, bs)]
        return terms, mpmath.fsum(terms)


def _resolved(value: object, scale: object, prec: int) -> bool:
    """Whether a difference of terms of size ``scale`` is resolved at ``prec`` bits."""
    return value != 0 and abs(value) > abs(scale) * mpmath.mpf(2) ** (80 - prec)


def ref_onehot_vjp(name: str, x: np.ndarray, k: int, dtype: str) -> np.ndarray:
    """softmax / log_softmax VJP with cotangent e_k, via 1 - p_k = sum_{j != k} p_j."""
    with mpmath.workprec(256):
        terms, s = _mp_probs(x, None, 256)
        p = [t / s for t in terms]
        rest = mpmath.fsum(p[:k] + p[k + 1 :])
        if name == "softmax":  # p_k (delta_ik - p_i)
            vals = [p[k] * rest if i == k else -p[k] * p[i] for i in range(len(p))]
        else:  # delta_ik - p_i
            vals = [rest if i == k else -p[i] for i in range(len(p))]
        return np.array([round_mpf(v, dtype) for v in vals])


def ref_ce_index(x: np.ndarray, t: int, dtype: str) -> np.ndarray:
    """d(row loss)/dx = p - onehot(t), with p_t - 1 = -sum_{j != t} p_j."""
    with mpmath.workprec(256):
        terms, s = _mp_probs(x, None, 256)
        p = [v / s for v in terms]
        rest = mpmath.fsum(p[:t] + p[t + 1 :])
        return np.array([round_mpf(-rest if i == t else p[i], dtype) for i in range(len(p))])


def ref_logsumexp(x: np.ndarray, b: np.ndarray | None, dtype: str) -> tuple[np.ndarray, float] | None:
    """``(b_i e^x_i / S, kappa)``: the signed sum resolved at a precision that suffices.

    ``kappa = sum_j |b_j e^x_j| / |S|`` is the condition number of the gradient (1 without
    cancellation): signed weights that nearly cancel make every ``p_i`` sensitive to the
    last bit of every term, beyond what a float64 ``exp`` can give.
    """
    prec = 256
    while prec <= 1 << 15:
        terms, s = _mp_probs(x, b, prec)
        scale = max(abs(t) for t in terms)
        if _resolved(s, scale, prec):
            with mpmath.workprec(prec):
                kappa = float(mpmath.fsum(abs(t) for t in terms) / abs(s))
                return np.array([round_mpf(t / s, dtype) for t in terms]), kappa
        prec *= 4
    return None  # an exact cancellation: the gradient does not exist


def ref_bce(x: np.ndarray, y: np.ndarray, dtype: str) -> np.ndarray:
    """(1 - y) sigma(x) - y sigma(-x): both products exact to the working precision."""
    out = np.empty(x.shape, dtype=np.float64)
    for i, (xi, yi) in enumerate(zip(x.astype(np.float64), y.astype(np.float64))):
        prec = 256
        while True:
            with mpmath.workprec(prec):
                xm, ym = mpmath.mpf(float(xi)), mpmath.mpf(float(yi))
                a = (1 - ym) / (1 + mpmath.exp(-xm))
                c = ym / (1 + mpmath.exp(xm))
                v = a - c
                if a == 0 or c == 0 or _resolved(v, max(a, c), prec) or prec > 1 << 14:
                    out[i] = round_mpf(v, dtype) if (v != 0 or a != c) else 0.0
                    break
            prec *= 4
    return out
IMPLS = ("stablenn-torch", "stablenn-jax", "torch", "jax")
_KIND = {"logit": "probability", "sigmoid_grad_from_output": "probability", "tanh_grad_from_output": "unit"}


def _flush(a: np.ndarray, dtype: str) -> np.ndarray:
    """Subnormals of `dtype` replaced by zeros of their sign (what XLA's FTZ/DAZ reads and writes)."""
    a = np.asarray(a)
    sub = (a != 0) & (np.abs(a.astype(np.float64)) < np.finfo(dtype).tiny)
    return np.where(sub, np.copysign(np.zeros_like(a), a), a)


def _max_ulp(got: np.ndarray, exact: np.ndarray, dtype: str, jax_rule: bool) -> float:
    """Largest ULP distance; ``jax_rule``: to the exact value or its flushed form, whichever
    is nearer (XLA on the CPU flushes subnormal results to zero: the platform's rule)."""
    e64 = np.asarray(exact).astype(np.float64)
    keep = np.isfinite(e64)
    if not keep.any():
        return 0.0
    g = np.asarray(got, dtype=np.float64)[keep].astype(dtype)
    e = np.asarray(exact)[keep]
    d = ulp_distance(g, e, dtype)
    if jax_rule:
        d = np.minimum(d, ulp_distance(g, _flush(e, dtype), dtype))
    return float(np.max(d))


def _measure_all(impls: dict, call, exact: np.ndarray, dtype: str, worst: dict, subnormal_inputs: bool = False, exact_jax: np.ndarray | None = None) -> None:
    """Update ``worst[key]`` for every implementation.

    The JAX implementations are measured with the flushed-reference rule, against
    ``exact_jax`` (the exact gradient at the flushed inputs) where given.  (For vectors and
    losses a subnormal input changes the exact gradient by far less than one ULP of any
    normal result: the unflushed reference is used.)
    """
    for k, f in impls.items():
        got = call(f)
        jax_rule = "jax" in k
        ref = exact_jax if (jax_rule and exact_jax is not None) else exact
        worst[k] = max(worst.get(k, 0.0), _max_ulp(got, ref, dtype, jax_rule))


def elementwise(name: str, dtype: str, n: int) -> dict[str, float]:
    x = _sampler.sample_unary(dtype, n, seed=4, kind=_KIND.get(name, "real"))
    x = x[np.isfinite(x)]
    exact = _oracle.derivative(name, x, dtype)
    xf = _flush(x, dtype)
    exact_jax = exact.copy()
    sub = xf != x
    if sub.any():  # XLA reads a subnormal input as 0: the exact gradient there
        exact_jax[sub] = _oracle.derivative(name, xf[sub], dtype)
    worst: dict[str, float] = {}
    _measure_all(gradient_impls(name), lambda f: f(x), exact, dtype, worst, exact_jax=exact_jax)
    return worst


def _finite_cases(dtype: str, m: int, weights: bool = False) -> list:
    cases = _sampler.sample_vectors(dtype, m, seed=5, weights=weights, max_len=64)
    return [c for c in cases if np.isfinite(c.x).all() and (c.b is None or np.isfinite(c.b).all())]


LSE_KAPPA = 4.0  # signed weights: measured where the sum cancels at most 4-fold


def logsumexp(dtype: str, m: int, signed: bool = False) -> dict[str, float]:
    """Unweighted and positive weights; or (``signed``) weights of both signs, kappa <= 4."""
    impls = gradient_impls("logsumexp")
    worst: dict[str, float] = {}
    skipped = 0
    for case in _finite_cases(dtype, m, weights=True):
        b = case.b
        if b is not None and (not (b != 0).any() or ((b < 0).any() != signed)):
            continue
        if b is None and signed:
            continue
        ref = ref_logsumexp(case.x, b, dtype)
        if ref is None or ref[1] > LSE_KAPPA:  # no gradient, or an ill-conditioned one
            skipped += 1
            continue
        _measure_all(impls, lambda f: f(case.x, b), ref[0], dtype, worst)
    if signed:
        print(f"    signed weights: {skipped} ill-conditioned vectors (kappa > {LSE_KAPPA}) left out", file=sys.stderr)
    return worst


def normalise(name: str, dtype: str, m: int, rows: int = 4) -> dict[str, float]:
    impls = gradient_impls(name)
    worst: dict[str, float] = {}
    for case in _finite_cases(dtype, m):
        n = case.x.size
        order = np.argsort(case.x)[::-1]
        for i in list(order[:rows]) + ([int(order[-1])] if n > rows else []):
            g = np.zeros(n, dtype=dtype)
            g[i] = 1.0
            exact = ref_onehot_vjp(name, case.x, int(i), dtype)
            _measure_all(impls, lambda f: f(case.x, g), exact, dtype, worst)
    return worst


def bce(dtype: str, n: int) -> dict[str, float]:
    rng = np.random.default_rng(6)
    x = _sampler.sample_unary(dtype, n, seed=6)
    x = x[np.isfinite(x)]
    soft = _sampler.sample_labels(dtype, x.size, seed=7)
    hard = rng.integers(0, 2, size=x.size).astype(dtype)
    impls = gradient_impls("binary_cross_entropy_with_logits")
    worst: dict[str, float] = {}
    for y in (hard, soft):
        exact = ref_bce(x, y, dtype).astype(dtype)
        _measure_all(impls, lambda f: f(x, y), exact, dtype, worst)
    return worst


def cross_entropy(dtype: str, m: int) -> dict[str, float]:
    impls = gradient_impls("cross_entropy_with_logits")
    worst: dict[str, float] = {}
    for case in _finite_cases(dtype, m):
        order = np.argsort(case.x)[::-1]
        for t in {int(order[0]), int(order[-1])}:
            exact = ref_ce_index(case.x, t, dtype)
            _measure_all(impls, lambda f: f(case.x, np.int64(t)), exact, dtype, worst)
    return worst


def run(samples: int, vectors: int, functions: list[str]) -> list[tuple[str, str, dict[str, float]]]:
    rows = []
    for name in functions:
        for dtype in ("float32", "float64"):
            t0 = time.perf_counter()
            if name in ELEMENTWISE:
                res = elementwise(name, dtype, samples)
            elif name == "logsumexp":
                res = logsumexp(dtype, vectors)
                rows.append((name, dtype, res))
                res = logsumexp(dtype, vectors, signed=True)
                name_row = "logsumexp, signed b (kappa <= 4)"
                rows.append((name_row, dtype, res))
                print(f"  {name} {dtype}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
                continue
            elif name in ("softmax", "log_softmax"):
                res = normalise(name, dtype, vectors)
            elif name == "binary_cross_entropy_with_logits":
                res = bce(dtype, samples)
            else:
                res = cross_entropy(dtype, vectors)
            rows.append((name, dtype, res))
            print(f"  {name} {dtype}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return rows


def _fmt(v: float) -> str:
    if v == float("inf"):
        return "inf (NaN)"
    return f"{v:.0f}" if v < 1e4 else f"{v:.1e}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=3000, help="scalar inputs per elementwise function and dtype")
    p.add_argument("--vectors", type=int, default=200, help="vectors per reduction and dtype")
    p.add_argument("--functions", nargs="*", default=None)
    args = p.parse_args(argv)
    from stablenn._autodiff._impls import FUNCTIONS

    rows = run(args.samples, args.vectors, args.functions or list(FUNCTIONS))
    print("Max ULP of the gradient against mpmath; JAX columns against the flushed reference (FTZ/DAZ)\n")
    print("| function | dtype | stablenn (torch) | stablenn (jax) | torch | jax |")
    print("|---|---|---:|---:|---:|---:|")
    for name, dtype, res in rows:
        print(f"| {name} | {dtype} | " + " | ".join(_fmt(res.get(k, float("nan"))) for k in IMPLS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
