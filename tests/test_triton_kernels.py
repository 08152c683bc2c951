"""The Triton kernels, run by Triton's interpreter on CPU tensors, against mpmath.

``TRITON_INTERPRET=1`` makes ``@triton.jit`` build interpreted kernels (NumPy on the CPU)
instead of GPU ones.  Triton reads it when it is imported and when each kernel is
decorated, and pytest's doctest collection of ``src`` imports triton first; so in the test
session this module only runs itself again, in a fresh Python with the variable set
(``test_kernels_under_the_interpreter``), and the tests below run there.  No other test
process ever sees the variable.

Truth is mpmath at 60 digits on the exact input values, rounded once to the data's dtype
(``stablenn.audit._ulp.round_mpf``); a result passes at a distance of at most 1 ULP
(``ulp_distance``), the budget of the CPU path.  The shapes are small, and the tuning
limits are lowered so that rows are walked in several chunks and split across programs:
every code path of every kernel runs.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import mpmath
import numpy as np
import pytest
import torch

# Triton reads TRITON_INTERPRET when it and each kernel are first imported: this module
# runs its tests only in a process started with it set (see the end of the module).
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"

if INTERPRETED:
    import triton
    import triton.language as tl

    import stablenn._fast.triton as T
    from stablenn._fast.triton import _autograd as A
    from stablenn._fast.triton import _launch as L
    from stablenn._fast.triton import _math as M

    @triton.jit
    def _math_probe(x_ptr, out_ptr, n, OP: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        if WIDE:
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float64)
        else:
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if OP == 0:
            y = M.exp_neg(x, WIDE)
        elif OP == 1:
            y = M.expm1_neg(x, WIDE)
        else:
            y = M.log1p_pos(x, WIDE)
        tl.store(out_ptr + offs, y.to(tl.float64), mask=mask)

    @triton.jit
    def _round_probe(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask, other=0.0)
        tl.store(out_ptr + offs, M.to_out(x, 2), mask=mask)

import stablenn as snn  # noqa: E402
from stablenn._fast import _triton_entries as E  # noqa: E402
from stablenn.audit._ulp import round_mpf, ulp_distance  # noqa: E402

INF, NAN = math.inf, math.nan
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
DPS = 60


def test_kernels_are_interpreted() -> None:
    assert L.interpreted(), "the kernel modules were decorated without TRITON_INTERPRET=1"


@pytest.fixture(params=["single", "walked"])
def paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run once with rows in registers, once with rows walked in chunks of 16 (and split)."""
    if request.param == "walked":
        for key in ("single_wide", "single_half"):
            monkeypatch.setitem(L.LIMITS, key, 8)
        for key in ("block_wide", "block_half"):
            monkeypatch.setitem(L.LIMITS, key, 16)
        monkeypatch.setitem(L.LIMITS, "split_rows_per_sm", 64)
        monkeypatch.setitem(L.LIMITS, "max_split", 3)
    for key in ("elementwise_wide", "elementwise_half"):
        monkeypatch.setitem(L.LIMITS, key, 32)
    return str(request.param)


# ---------------------------------------------------------------- helpers


def values(t: torch.Tensor) -> list[float]:
    """The exact values of a tensor as Python floats (every dtype here embeds in float64)."""
    return [float(v) for v in t.detach().to(torch.float64).reshape(-1).tolist()]


def make(rows: Sequence[Sequence[float]], dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64).to(dtype)


def assert_ulps(got: torch.Tensor, exact: Sequence[Any], dtype: torch.dtype, budget: int = 1) -> None:
    """``got`` within ``budget`` ULPs of the correctly rounded ``exact`` values (NaN == NaN)."""
    fmt = NAMES[dtype]
    want = [round_mpf(e, fmt) if isinstance(e, mpmath.mpf) else float(e) for e in exact]
    g = np.asarray(values(got), dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    assert g.shape == w.shape
    store = np.float32 if fmt != "float16" else np.float16
    dist = ulp_distance(g.astype(store), w.astype(store), fmt)
    worst = int(np.argmax(dist))
    assert float(dist.max()) <= budget, (
        f"{fmt}: {dist.max()} ULP at {worst}: got {g[worst]!r}, want {w[worst]!r}"
    )


def assert_close(got: torch.Tensor, exact: Sequence[Any], scale: Sequence[Any], dtype: torch.dtype) -> None:
    """Gradients with a cancellation the data already carries: within 1 ULP of the result
    plus 2**-40 of ``scale`` (the size of the terms that cancel) for float32 (2**-20 for the
    16-bit dtypes)."""
    fmt = NAMES[dtype]
    eps = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}[fmt]
    slack = 2.0**-40 if fmt == "float32" else 2.0**-20
    quantum = {"float32": 2.0**-149, "float16": 2.0**-24, "bfloat16": 2.0**-133}[fmt]  # subnormal spacing
    for i, (g, e, s) in enumerate(zip(values(got), exact, scale)):
        e = float(e)
        if math.isnan(e) or math.isinf(e):
            assert (math.isnan(g) and math.isnan(e)) or g == e, f"{i}: got {g}, want {e}"
            continue
        tol = 2 * eps * abs(e) + slack * float(s) + quantum
        assert abs(g - e) <= tol, f"{fmt} at {i}: got {g!r}, want {e!r} (tolerance {tol:.3g})"


def mpf(v: float) -> Any:
    return mpmath.mpf(v)


# ---------------------------------------------------------------- mpmath references


def lse_ref(row: Sequence[float]) -> Any:
    if any(math.isnan(v) for v in row):
        return NAN
    if any(v == INF for v in row):
        return INF
    live = [v for v in row if v > -INF]
    if not live:
        return -INF
    with mpmath.workdps(DPS):
        return +mpmath.log(mpmath.fsum(mpmath.exp(mpf(v)) for v in live))


def softmax_ref(row: Sequence[float], log: bool) -> list[Any]:
    if any(math.isnan(v) for v in row):
        return [NAN] * len(row)
    k = sum(v == INF for v in row)
    with mpmath.workdps(DPS):
        if k:
            if log:
                return [-mpmath.log(k) if v == INF else -INF for v in row]
            return [mpmath.mpf(1) / k if v == INF else 0.0 for v in row]
        live = [v for v in row if v > -INF]
        if not live:
            return [-INF if log else 0.0] * len(row)
        lse = mpmath.log(mpmath.fsum(mpmath.exp(mpf(v)) for v in live))
        if log:
            return [mpf(v) - lse if v > -INF else -INF for v in row]
        return [mpmath.exp(mpf(v) - lse) if v > -INF else 0.0 for v in row]


def probs(row: Sequence[float]) -> list[Any]:
    """softmax with the special rows (NaN, +inf, all -inf), exact."""
    return softmax_ref(row, log=False)


def nll(row: Sequence[float]) -> list[Any]:
    """-log p_c for every class, with the CPU path's special rows."""
    if any(math.isnan(v) for v in row):
        return [NAN] * len(row)
    k = sum(v == INF for v in row)
    with mpmath.workdps(DPS):
        if k:
            return [mpmath.log(k) if v == INF else INF for v in row]
        lse = lse_ref(row)
        return [lse - mpf(v) if -INF < v < INF else INF for v in row]


def ce_ref(
    x: list[list[float]],
    t: list[int],
    w: list[float] | None,
    ignore: int | None,
    eps: float,
    reduction: str,
) -> tuple[list[Any], list[list[Any]]]:
    """(losses, gradient of the reduced loss) for class-index cross-entropy, exact."""
    c = len(x[0])
    ww = [1.0] * c if w is None else w
    with mpmath.workdps(DPS):
        losses, wts = [], []
        for row, ti in zip(x, t):
            if ignore is not None and ti == ignore:
                losses.append(mpmath.mpf(0))
                wts.append(0.0)
                continue
            nl = nll(row)
            loss = mpf(nl[ti]) * ww[ti] if not (math.isinf(float(nl[ti])) and ww[ti] == 0) else NAN
            if eps:
                sm = mpmath.fsum(0 if wc == 0 else mpf(n) * wc for n, wc in zip(nl, ww))
                loss = (1 - mpf(eps)) * loss + mpf(eps) / c * sm
            losses.append(loss)
            wts.append(ww[ti])
        den = mpmath.fsum(wts)
        scale = 1 / den if reduction == "mean" else mpmath.mpf(1)
        grads = []
        for row, ti, wt in zip(x, t, wts):
            if ignore is not None and ti == ignore:
                grads.append([0.0] * c)
                continue
            p = probs(row)
            if any(isinstance(v, float) and math.isnan(v) for v in p):
                grads.append([NAN] * c)
                continue
            wsum = mpmath.fsum(ww)
            g = []
            for ci in range(c):
                v = (1 - mpf(eps)) * wt * (mpf(p[ci]) - (1 if ci == ti else 0))
                v += mpf(eps) / c * (wsum * mpf(p[ci]) - ww[ci])
                g.append(v * scale)
            grads.append(g)
        if reduction == "none":
            return losses, grads
        total = mpmath.fsum(losses) if not any(isinstance(v, float) for v in losses) else sum(
            float(v) for v in losses
        )
        return [total * scale if reduction == "mean" else total], grads


def softplus_ref(x: float) -> Any:
    if x == INF:
        return INF
    if x == -INF:
        return mpmath.mpf(0)
    with mpmath.workdps(DPS):
        return mpmath.log1p(mpmath.exp(mpf(x)))


def sigmoid_ref(x: float) -> Any:
    if x == INF:
        return mpmath.mpf(1)
    if x == -INF:
        return mpmath.mpf(0)
    with mpmath.workdps(DPS):
        return 1 / (1 + mpmath.exp(-mpf(x)))


def bce_ref(x: float, y: float, w: float, pw: float) -> Any:
    if math.isnan(x) or math.isnan(y):
        return NAN
    if math.isinf(x):
        coef = (1 - y) * w if x > 0 else pw * y * w
        return 0.0 if coef == 0 else math.copysign(INF, coef)
    with mpmath.workdps(DPS):
        return w * (pw * mpf(y) * softplus_ref(-x) + (1 - mpf(y)) * softplus_ref(x))


def unary_ref(name: str, x: float) -> Any:
    if math.isnan(x):
        return NAN
    with mpmath.workdps(DPS):
        if name == "sigmoid":
            return sigmoid_ref(x)
        if name == "sigmoid_neg":
            return sigmoid_ref(-x)
        if name == "softplus":
            return softplus_ref(x)
        if name == "log_sigmoid":
            return -softplus_ref(-x) if x != INF else -0.0
        if name == "sigmoid_grad":
            return 0.0 if math.isinf(x) else sigmoid_ref(x) * sigmoid_ref(-x)
        if name == "tanh":
            return math.copysign(1.0, x) if math.isinf(x) else (x if x == 0 else mpmath.tanh(mpf(x)))
        if name == "tanh_grad":
            return 0.0 if math.isinf(x) else 1 / mpmath.cosh(mpf(x)) ** 2
    raise AssertionError(name)


# ---------------------------------------------------------------- inputs


def rows_for(dtype: torch.dtype, n: int, seed: int) -> torch.Tensor:
    """Rows that reach every special case, padded with random logits."""
    g = torch.Generator().manual_seed(seed)
    base = (torch.randn(12, n, generator=g, dtype=torch.float64) * 4).to(dtype)
    big = 60.0 if dtype == torch.float16 else 300.0
    base[1, n // 2] = INF  # a +inf entry
    base[2] = -INF  # all -inf
    base[3, n - 1] = NAN  # NaN
    base[4] = -INF
    base[4, n // 3] = 5.0  # one finite entry
    base[5] = -40.0  # a dominant term: log1p keeps the others' 1e-18
    base[5, 0] = 0.0
    base[6] = torch.linspace(-big, big, n, dtype=torch.float64).to(dtype)  # max rises every chunk
    base[7] = 3.0  # ties of the maximum in every chunk
    base[8, 0] = INF
    base[8, n - 1] = INF  # two +inf entries share the mass
    base[9] = -base[6]  # max in the first chunk
    base[10, :] = (torch.arange(n, dtype=torch.float64) % 3 - 50).to(dtype)
    base[11, n // 2] = -INF
    return base


SIZES = [1, 5, 37]


# ---------------------------------------------------------------- device functions


@pytest.mark.parametrize("wide", [True, False])
def test_math_functions_against_mpmath(wide: bool) -> None:
    """exp_neg, expm1_neg and log1p_pos meet the relative accuracy their docstring states."""
    dtype = torch.float64 if wide else torch.float32
    bounds = {0: 1e-13, 1: 1e-12, 2: 1.5e-12} if wide else {0: 5e-7, 1: 1e-6, 2: 5e-7}
    limit = -745.0 if wide else -103.0
    neg = torch.cat([
        -torch.logspace(-30, math.log10(-limit), 400, dtype=torch.float64),
        torch.tensor([0.0, -0.3465, -0.3466, -0.6931, -1.0397, -2.0, -86.0, -87.5]),
    ]).to(dtype)
    pos = torch.cat([
        torch.logspace(-30, 30, 400, dtype=torch.float64),
        torch.tensor([0.0, 0.4142, 0.4143, 1.0, 2.0, 1e-8, 3.0]),
    ]).to(dtype)
    cases = [(0, neg, mpmath.exp), (1, neg[neg > -60], mpmath.expm1), (2, pos, mpmath.log1p)]
    for op, x, fn in cases:
        out = torch.empty(x.numel(), dtype=torch.float64)
        with np.errstate(all="ignore"):
            _math_probe[(math.ceil(x.numel() / 64),)](x, out, x.numel(), OP=op, WIDE=wide, BLOCK=64)
        for xv, yv in zip(values(x), values(out)):
            with mpmath.workdps(DPS):
                ref = fn(mpf(xv))
                if wide and op == 0 and xv < -700:  # flushed: below every float32 result
                    assert yv == 0, xv
                    continue
                if ref == 0:
                    assert yv == 0
                    continue
                tiny, quantum = (2.0**-1022, 2.0**-1074) if wide else (2.0**-126, 2.0**-149)
                if abs(ref) < tiny:  # subnormal results: one rounding, absolute
                    assert abs(yv - ref) <= quantum, (op, xv, yv)
                    continue
                err = abs((yv - ref) / ref)
            assert err <= bounds[op], f"op {op} at {xv!r}: relative error {float(err):.3g}"
    # the ends of the ranges
    special = torch.tensor([-INF, NAN, -800.0], dtype=dtype)
    out = torch.empty(3, dtype=torch.float64)
    with np.errstate(all="ignore"):
        _math_probe[(1,)](special, out, 3, OP=0, WIDE=wide, BLOCK=16)
    assert out[0] == 0 and math.isnan(out[1]) and out[2] == 0
    special = torch.tensor([INF, NAN], dtype=dtype)
    with np.errstate(all="ignore"):
        _math_probe[(1,)](special, out, 2, OP=2, WIDE=wide, BLOCK=16)
    assert out[0] == INF and math.isnan(out[1])


def test_bfloat16_rounding_is_to_nearest_even() -> None:
    """``to_out`` rounds float32 to bfloat16 correctly (the interpreter's own cast truncates)."""
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(-(2**31), 2**31 - 1, (4000,), generator=g, dtype=torch.int64).to(torch.int32)
    ties = (torch.arange(-200, 200, dtype=torch.int32) << 16) | 0x8000  # exact halfway cases
    x = torch.cat([bits.view(torch.float32), ties.view(torch.float32), torch.tensor([
        0.0, -0.0, INF, -INF, NAN, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, 1.0 + 2**-8,
        1.0 + 3 * 2**-8, 1.0 + 2**-8 + 2**-20, 9.2e-41,
    ], dtype=torch.float32)])
    out = torch.empty(x.numel(), dtype=torch.int16)
    with np.errstate(all="ignore"):
        _round_probe[(math.ceil(x.numel() / 256),)](x, out, x.numel(), BLOCK=256)
    got = out.view(torch.bfloat16)
    for xv, gv in zip(values(x), values(got)):
        want = round_mpf(xv, "bfloat16") if not math.isnan(xv) else NAN
        assert (math.isnan(gv) and math.isnan(want)) or (gv == want and math.copysign(1, gv) == math.copysign(1, want)), (xv, gv, want)


# ---------------------------------------------------------------- log-sum-exp, softmax


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("n", SIZES)
def test_logsumexp(dtype: torch.dtype, n: int, paths: str) -> None:
    x = rows_for(dtype, n, seed=n)
    got = L.logsumexp(x)
    assert got.dtype == dtype and got.shape == (12,)
    rows = [values(r) for r in x]
    assert_ulps(got, [lse_ref(r) for r in rows], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
def test_logsumexp_one_long_row_is_split(dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch) -> None:
    """A single row (``axis=None``) is cut into segments whose states are merged."""
    monkeypatch.setitem(L.LIMITS, "block_wide", 16)
    monkeypatch.setitem(L.LIMITS, "block_half", 16)
    monkeypatch.setitem(L.LIMITS, "single_wide", 8)
    monkeypatch.setitem(L.LIMITS, "single_half", 8)
    calls: list[str] = []
    real = L._launch
    monkeypatch.setattr(L, "_launch", lambda k, *a, **kw: (calls.append(k.fn.__name__), real(k, *a, **kw))[1])
    for row in ([0.0] + [-40.0] * 99, list(np.linspace(-20, 20, 100)), [-INF] * 50 + [2.0] + [-INF] * 49,
                [1.0] * 70 + [INF] + [1.0] * 29, [-INF] * 100):
        x = make([row], dtype)
        assert_ulps(L.logsumexp(x), [lse_ref(values(x[0]))], dtype)
    assert "_lse_merge_kernel" in calls


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("n", SIZES[1:])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax(dtype: torch.dtype, n: int, log: bool, paths: str) -> None:
    x = rows_for(dtype, n, seed=10 + n)
    got = L.softmax(x, log)
    assert got.dtype == dtype and got.shape == x.shape
    exact = [v for r in x for v in softmax_ref(values(r), log)]
    assert_ulps(got, exact, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("n", [5, 37])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_backward(dtype: torch.dtype, n: int, log: bool, paths: str) -> None:
    x = rows_for(dtype, n, seed=20 + n)[[0, 2, 4, 5, 6, 10, 11]]  # finite gradients
    y = L.softmax(x, log)
    g = torch.Generator().manual_seed(n)
    dy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(dtype)
    got = L.softmax_backward(y, dy, log)
    exact, scale = [], []
    with mpmath.workdps(DPS):
        for yr, dr in zip(y, dy):
            yv, dv = [mpf(v) for v in values(yr)], [mpf(v) for v in values(dr)]
            if log:
                acc = mpmath.fsum(dv)
                exact += [d - mpmath.exp(v) * acc for v, d in zip(yv, dv)]
                scale += [abs(d) + mpmath.exp(v) * mpmath.fsum(abs(t) for t in dv) for v, d in zip(yv, dv)]
            else:
                acc = mpmath.fsum(v * d for v, d in zip(yv, dv))
                exact += [v * (d - acc) for v, d in zip(yv, dv)]
                scale += [abs(v) * (abs(d) + mpmath.fsum(abs(a * b) for a, b in zip(yv, dv))) for v, d in zip(yv, dv)]
    assert_close(got, exact, scale, dtype)


def test_logsumexp_gradient_is_softmax_times_upstream(paths: str) -> None:
    x = rows_for(torch.float32, 37, seed=3)[[0, 2, 5, 6]]
    g = torch.tensor([1.0, 2.0, -0.5, 3.0])
    got = L.softmax(x, False, g=g)
    exact = [mpf(p) * gv for r, gv in zip(x, values(g)) for p in softmax_ref(values(r), False)]
    assert_ulps(got, exact, torch.float32)


# ---------------------------------------------------------------- cross-entropy


CE_CASES = [
    # weight, ignore_index, label_smoothing, reduction
    (False, None, 0.0, "none"),
    (True, None, 0.0, "mean"),
    (False, 2, 0.0, "mean"),
    (True, 1, 0.1, "sum"),
    (False, None, 0.25, "none"),
    (True, 3, 0.0, "none"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("case", CE_CASES)
def test_cross_entropy(dtype: torch.dtype, case: tuple, paths: str) -> None:
    has_w, ignore, eps, reduction = case
    n = 5 if paths == "single" else 37
    x = rows_for(dtype, n, seed=30 + n)
    # rows with a finite loss for the targets below (the special rows are tested apart)
    x = x[[0, 5, 6, 7, 9, 10, 11]]
    rows = [values(r) for r in x]
    g = torch.Generator().manual_seed(n)
    t = torch.randint(0, n, (len(rows),), generator=g)
    t[1] = 0  # the argmax of the dominant row: loss log1p(rest), which peers round to 0
    t[3] = n - 1
    if rows[6][int(t[6])] == -INF:
        t[6] = (int(t[6]) + 1) % n
    if ignore is not None:
        t[2] = ignore
    w = None
    if has_w:
        w = (torch.rand(n, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    tl_ = [int(v) for v in t]
    wl = None if w is None else values(w)
    loss, grad = L.cross_entropy(x, t, w, ignore, eps, reduction, True)
    exact, exact_g = ce_ref(rows, tl_, wl, ignore, eps, reduction)
    assert_ulps(loss.reshape(-1), exact, dtype)
    assert grad is not None
    flat_g = [v for r in exact_g for v in r]
    if eps == 0.0:
        assert_ulps(grad, flat_g, dtype)
    else:  # smoothing subtracts w_c eps/C from a multiple of p_c
        scale = [abs(float(v)) + 1.0 for v in flat_g]
        assert_close(grad, flat_g, scale, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
def test_cross_entropy_special_rows(dtype: torch.dtype, paths: str) -> None:
    """NaN rows, +inf logits, a -inf target logit, an all -inf row: the CPU path's answers."""
    n = 6
    x = make([
        [1.0, NAN, 0.0, 0.0, 0.0, 0.0],
        [INF, 0.0, INF, 1.0, 0.0, 0.0],  # target +inf: log 2
        [INF, 0.0, 1.0, 1.0, 0.0, 0.0],  # target finite: inf
        [-INF, 0.0, 1.0, 2.0, 0.0, 0.0],  # target -inf: inf
        [-INF] * 6,  # all -inf: inf
        [40.0, 0.0, 0.0, 0.0, 0.0, -INF],  # argmax: 5 e^-40, every digit kept
    ], dtype)
    t = torch.tensor([0, 2, 1, 0, 3, 0])
    rows = [values(r) for r in x]
    loss, grad = L.cross_entropy(x, t, None, None, 0.0, "none", True)
    exact, exact_g = ce_ref(rows, [int(v) for v in t], None, None, 0.0, "none")
    assert_ulps(loss, exact, dtype)
    assert grad is not None
    assert_ulps(grad, [v for r in exact_g for v in r], dtype)
    assert torch.isfinite(grad[1:]).all()  # finite gradients even where the loss is inf


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
def test_cross_entropy_bad_index_is_nan_when_unchecked(dtype: torch.dtype) -> None:
    x = make([[0.0, 1.0], [1.0, 0.0]], dtype)
    loss, grad = L.cross_entropy(x, torch.tensor([5, 0]), None, None, 0.0, "none", True)
    assert math.isnan(float(loss[0])) and not math.isnan(float(loss[1]))
    assert grad is not None and torch.isnan(grad[0]).all() and torch.isfinite(grad[1]).all()


def test_cross_entropy_targets_out_of_range_raise_the_cpu_error() -> None:
    x = make([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0]], torch.float32)
    t = torch.tensor([3, -1])
    with pytest.raises(ValueError) as ours:
        T.cross_entropy_with_logits(x, t, None, None, 0.0, "mean")
    with pytest.raises(ValueError) as cpu:
        snn.cross_entropy_with_logits(x, t)
    assert str(ours.value) == str(cpu.value)
    with pytest.raises(ValueError) as ours:
        T.cross_entropy_with_logits(x, torch.tensor([3, -100]), None, -100, 0.0, "mean")
    with pytest.raises(ValueError) as cpu:
        snn.cross_entropy_with_logits(x, torch.tensor([3, -100]), ignore_index=-100)
    assert str(ours.value) == str(cpu.value)
    A.check_targets(torch.tensor([2, -100]), 3, -100)  # ignored entries are not out of range


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
def test_cross_entropy_backward_scales_in_place(dtype: torch.dtype) -> None:
    x = make([[0.0, 1.0, 2.0], [3.0, 0.0, -1.0]], dtype)
    _, grad = L.cross_entropy(x, torch.tensor([0, 1]), None, None, 0.0, "none", True)
    assert grad is not None
    before = grad.clone()
    L.scale_rows(grad, make([1.0, 2.0], dtype), per_row=True)
    assert torch.equal(grad[0], before[0])
    assert_ulps(grad[1], [mpf(v) * 2 for v in values(before[1])], dtype)
    L.scale_rows(grad, make(-0.5, dtype).reshape(()), per_row=False)
    assert_ulps(grad[0], [mpf(v) * -0.5 for v in values(before[0])], dtype)


# ---------------------------------------------------------------- binary cross-entropy


def bce_inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    x = (torch.randn(6, 9, generator=g, dtype=torch.float64) * 6).to(dtype)
    y = torch.rand(6, 9, generator=g, dtype=torch.float64).to(dtype)
    y[0] = torch.tensor([0, 1, 0.5, 1, 0, 1, 0.25, 1, 1 - 2**-7], dtype=torch.float64).to(dtype)
    x[0] = torch.tensor([INF, INF, INF, -INF, -INF, 30.0, -30.0, 0.0, 60.0], dtype=torch.float64).to(dtype)
    x[1, 0] = NAN
    y[1, 1] = NAN
    return x, y


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
def test_bce(dtype: torch.dtype, reduction: str, weights: str, paths: str) -> None:
    x, y = bce_inputs(dtype)
    g = torch.Generator().manual_seed(8)
    w = pw = None
    if weights in ("weight", "both"):  # one weight per row: a broadcast that is materialised
        w = (torch.rand(6, 1, generator=g, dtype=torch.float64) + 0.5).to(dtype).expand(6, 9)
    if weights in ("pos_weight", "both"):  # one per class: kept periodic
        pw = (torch.rand(9, generator=g, dtype=torch.float64) * 3).to(dtype).expand(6, 9)
    got = L.bce(x, y, w, pw, reduction)
    wv = values(w) if w is not None else [1.0] * 54
    pv = values(pw) if pw is not None else [1.0] * 54
    exact = [bce_ref(a, b, c, d) for a, b, c, d in zip(values(x), values(y), wv, pv)]
    if reduction == "none":
        assert_ulps(got, exact, dtype)
        return
    # the finite part, reduced (the rows with NaN and inf are tested with 'none' above)
    x2, y2 = x[2:], y[2:]
    w2 = None if w is None else w[2:]
    pw2 = None if pw is None else pw[2:]
    got = L.bce(x2, y2, w2, pw2, reduction)
    part = exact[18:]
    with mpmath.workdps(DPS):
        total = mpmath.fsum(part)
        ref = total / len(part) if reduction == "mean" else total
    assert_ulps(got.reshape(1), [ref], dtype)
    assert math.isnan(float(L.bce(x, y, w, pw, reduction)))


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_bce_backward(dtype: torch.dtype, reduction: str, paths: str) -> None:
    x, y = bce_inputs(dtype)
    x, y = x[[0, 2, 3]], y[[0, 2, 3]]
    g = torch.Generator().manual_seed(9)
    pw = (torch.rand(9, generator=g, dtype=torch.float64) * 3).to(dtype).expand(3, 9)
    w = (torch.rand(3, 9, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    dout = make(0.75, dtype).reshape(()) if reduction != "none" else torch.randn(3, 9, generator=g).to(dtype)
    dx, dt = L.bce_backward(x, y, w, pw, reduction, dout, True)
    assert dt is not None
    dv = values(dout) * (27 if reduction != "none" else 1)
    exact_x, exact_t, scale_x, scale_t = [], [], [], []
    with mpmath.workdps(DPS):
        for a, b, c, d, e in zip(values(x), values(y), values(w), values(pw), dv):
            gg = mpf(e) / (27 if reduction == "mean" else 1)
            s_pos, s_neg = sigmoid_ref(a), sigmoid_ref(-a)
            exact_x.append(c * ((1 - mpf(b)) * s_pos - d * mpf(b) * s_neg) * gg)
            scale_x.append(abs(c * gg) * ((1 - b) * s_pos + d * b * s_neg))
            sp, sn = softplus_ref(a), softplus_ref(-a)
            if math.isinf(a):
                exact_t.append(math.copysign(INF, float(c * gg)) * (1 if a > 0 else -d) if (a > 0 or d) else 0.0)
                scale_t.append(0.0)
            else:
                exact_t.append(c * (sp - d * sn) * gg)
                scale_t.append(abs(c * gg) * (sp + d * sn))
    assert_close(dx, exact_x, scale_x, dtype)
    assert_close(dt, exact_t, scale_t, dtype)


# ---------------------------------------------------------------- sigmoid family


def unary_inputs(dtype: torch.dtype) -> torch.Tensor:
    fin = {torch.float32: torch.finfo(torch.float32), torch.float16: torch.finfo(torch.float16),
           torch.bfloat16: torch.finfo(torch.bfloat16)}[dtype]
    g = torch.Generator().manual_seed(11)
    mags = torch.logspace(-8, math.log10(fin.max) - 0.01, 120, dtype=torch.float64)
    dense = torch.linspace(-25, 25, 151, dtype=torch.float64)
    tail = -torch.linspace(80, 110, 31, dtype=torch.float64)  # sigmoid's subnormal tail
    rnd = torch.randn(60, generator=g, dtype=torch.float64) * 10
    specials = torch.tensor([0.0, -0.0, INF, -INF, NAN, fin.tiny, fin.smallest_normal * 0.5, 0.54, 0.55, 0.56])
    x = torch.cat([mags, -mags, dense, tail, rnd, specials]).to(dtype)
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid", "softplus", "sigmoid_grad", "tanh", "tanh_grad", "sigmoid_neg"])
def test_unary(dtype: torch.dtype, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("elementwise_wide", "elementwise_half"):  # several programs, a partial last block
        monkeypatch.setitem(L.LIMITS, key, 128)
    x = unary_inputs(dtype)
    got = L.unary(x, name)
    assert got.dtype == dtype and got.shape == x.shape
    assert_ulps(got, [unary_ref(name, v) for v in values(x)], dtype)
    if name in ("tanh", "sigmoid", "log_sigmoid"):  # signs of zero where the docstring promises one
        for xv, gv in zip(values(x), values(got)):
            if gv == 0 and xv == 0 and name == "tanh":
                assert math.copysign(1, gv) == math.copysign(1, xv)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("name", ["sigmoid_grad", "sigmoid", "sigmoid_neg", "tanh_grad"])
def test_unary_times_upstream(dtype: torch.dtype, name: str) -> None:
    x = unary_inputs(dtype)[::3]
    dy = torch.linspace(-3, 3, x.numel(), dtype=torch.float64).to(dtype)
    got = L.unary(x, name, dy)
    exact = [(NAN if math.isnan(float(unary_ref(name, a))) else unary_ref(name, a) * mpf(b)) for a, b in zip(values(x), values(dy))]
    assert_ulps(got, exact, dtype)


# ---------------------------------------------------------------- layouts


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=NAMES.get)
def test_non_contiguous_inputs(dtype: torch.dtype) -> None:
    base = rows_for(dtype, 12, seed=5)[:6]
    views = {
        "transposed": base.t().contiguous().t(),  # unit stride along rows, not along n
        "sliced": base[:, 3:11],  # rows strided by 12
        "strided": base[::2, ::2],  # no unit stride anywhere
        "batched": base.reshape(2, 3, 12).permute(1, 0, 2),  # leading axes not mergeable
    }
    for name, v in views.items():
        want = v.contiguous()
        for fn in (L.logsumexp, lambda a: L.softmax(a, False), lambda a: L.softmax(a, True),
                   lambda a: L.unary(a, "softplus")):
            got, ref = fn(v), fn(want)
            assert torch.equal(got.isnan(), ref.isnan()), name
            assert torch.equal(torch.nan_to_num(got), torch.nan_to_num(ref)), name


# ---------------------------------------------------------------- the public API, dispatched


@pytest.fixture
def interpreted_dispatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Let the entries accept CPU tensors, so that the public functions dispatch to the
    interpreted kernels; yields the names of the kernels launched."""
    monkeypatch.setattr(E, "DEVICE_TYPES", ("cuda", "cpu"))
    E.register_gradients()  # the fast gradient rules, for "cpu" too
    launched: list[str] = []
    real = L._launch

    def spy(kernel: Any, *args: Any, **kwargs: Any) -> None:
        launched.append(kernel.fn.__name__)
        real(kernel, *args, **kwargs)

    monkeypatch.setattr(L, "_launch", spy)
    yield launched
    try:
        from stablenn._autodiff import unregister_fast
    except ImportError:  # no gradient layer: nothing was registered
        return
    for name in E.GRADIENT_NAMES:
        unregister_fast(name, "cpu")


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
def test_public_functions_dispatch_to_the_kernels(dtype: torch.dtype, interpreted_dispatch: list[str]) -> None:
    x = rows_for(dtype, 7, seed=1)
    rows = [values(r) for r in x]
    assert_ulps(snn.logsumexp(x, axis=-1), [lse_ref(r) for r in rows], dtype)
    res, sign = snn.logsumexp(x, axis=1, return_sign=True)
    assert_ulps(sign, [NAN if math.isnan(float(lse_ref(r))) else (0.0 if lse_ref(r) == -INF else 1.0) for r in rows], dtype)
    assert_ulps(snn.softmax(x), [v for r in rows for v in softmax_ref(r, False)], dtype)
    assert_ulps(snn.log_softmax(x.t(), axis=0).t(), [v for r in rows for v in softmax_ref(r, True)], dtype)
    assert_ulps(snn.sigmoid(x), [unary_ref("sigmoid", v) for r in rows for v in r], dtype)
    xs, ts = x[[0, 5, 6]], torch.tensor([1, 0, 6])
    loss = snn.cross_entropy_with_logits(xs, ts, reduction="none")
    assert_ulps(loss, ce_ref([values(r) for r in xs], [1, 0, 6], None, None, 0.0, "none")[0], dtype)
    xb, yb = bce_inputs(dtype)
    out = snn.binary_cross_entropy_with_logits(xb[2:], yb[2:], reduction="none")
    assert_ulps(out, [bce_ref(a, b, 1.0, 1.0) for a, b in zip(values(xb[2:]), values(yb[2:]))], dtype)
    assert {"_lse_kernel", "_softmax_kernel", "_unary_kernel", "_ce_kernel", "_bce_kernel"} <= set(interpreted_dispatch)


def test_public_functions_fall_back_for_float64_and_weights(interpreted_dispatch: list[str]) -> None:
    x = torch.randn(3, 5, dtype=torch.float64)
    snn.softmax(x)
    snn.logsumexp(x.float(), axis=-1, b=torch.ones(3, 5))
    assert interpreted_dispatch == []


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=NAMES.get)
def test_gradients_through_the_public_functions(dtype: torch.dtype, interpreted_dispatch: list[str]) -> None:
    x0 = rows_for(dtype, 6, seed=2)[[0, 2, 5, 6]]
    rows = [values(r) for r in x0]

    def grad_of(fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        x = x0.clone().requires_grad_(True)
        fn(x).backward()
        assert x.grad is not None
        return x.grad

    g = grad_of(lambda x: snn.logsumexp(x, axis=-1).sum())
    assert_ulps(g, [v for r in rows for v in softmax_ref(r, False)], dtype)
    g = grad_of(lambda x: snn.cross_entropy_with_logits(x, torch.tensor([0, 1, 0, 5])))
    assert_ulps(g, [v for r in ce_ref(rows, [0, 1, 0, 5], None, None, 0.0, "mean")[1] for v in r], dtype)
    g = grad_of(lambda x: snn.softmax(x)[:, 0].sum())
    exact = []
    for r in rows:
        p = softmax_ref(r, False)
        exact += [mpf(p[0]) * ((1 if i == 0 else 0) - mpf(p[i])) for i in range(len(r))]
    assert_ulps(g, exact, dtype, budget=2)  # from the saved, rounded output
    g = grad_of(lambda x: snn.sigmoid(x).sum())
    assert_ulps(g, [unary_ref("sigmoid_grad", v) for r in rows for v in r], dtype)
    xb, yb = bce_inputs(dtype)
    x = xb[2:].clone().requires_grad_(True)
    snn.binary_cross_entropy_with_logits(x, yb[2:], reduction="sum").backward()
    assert x.grad is not None
    with mpmath.workdps(DPS):
        exact = [(1 - mpf(b)) * sigmoid_ref(a) - mpf(b) * sigmoid_ref(-a) for a, b in zip(values(xb[2:]), values(yb[2:]))]
    assert_close(x.grad, exact, [1.0] * len(exact), dtype)
    assert {"_softmax_bwd_kernel", "_bce_bwd_kernel", "_scale_rows_kernel"} <= set(interpreted_dispatch)


# ---------------------------------------------------------------- the GPU benchmark's checks


def _bench() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench", path)
    assert spec is not None and spec.loader is not None
    if "gpu_bench" in sys.modules:
        return sys.modules["gpu_bench"]
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_bench"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=NAMES.get)
def test_benchmark_correctness_checks_pass_on_tiny_shapes(dtype: torch.dtype) -> None:
    """The benchmark's correctness pass, on CPU tensors: every kernel, poisoned outputs."""
    bench = _bench()
    for case in bench.CASES:
        shape = (3, 37) if case.kind == "rows" else (150,)
        for result in bench.run_case(case, shape, dtype, "cpu"):
            assert result["ok"], result
            assert result["elements"] >= 1


def test_benchmark_catches_unwritten_and_inaccurate_outputs() -> None:
    bench = _bench()
    (softmax,) = [c for c in bench.CASES if c.name == "softmax"]

    def skips_last(inp: dict, bufs: dict | None) -> dict:
        # writes a correct result but leaves the last element of the buffer untouched
        assert bufs is not None
        full = L.softmax(inp["x"], False)
        bufs["out"].view(-1)[:-1] = full.view(-1)[:-1]
        return {"out": bufs["out"]}

    def two_ulps_off(inp: dict, bufs: dict | None) -> dict:
        out = L.softmax(inp["x"], False, out=None if bufs is None else bufs["out"])
        bits = out.view(torch.int32)
        bits[0, 0] += 2
        return {"out": out}

    for wrong in (skips_last, two_ulps_off):
        case = bench.Case(softmax.name, softmax.kind, softmax.make, wrong, softmax.outputs,
                          softmax.reference, softmax.peer, softmax.bytes)
        (result,) = bench.run_case(case, (2, 9), torch.float32, "cpu")
        assert not result["ok"] and result["failed"] == 1, result
    # the measure itself: NaN == NaN, inf == inf, 1 ULP, and a NaN where a number belongs
    got = torch.tensor([NAN, INF, 1.0 + 2.0**-23, NAN, 1.0], dtype=torch.float32)
    ref = torch.tensor([NAN, INF, 1.0, 1.0, -INF], dtype=torch.float64)
    assert bench.ulps(got, ref).tolist() == [0.0, 0.0, 1.0, INF, INF]
    assert bench.ulps(torch.tensor([2.0**-149]), torch.tensor([0.0], dtype=torch.float64)).tolist() == [1.0]


def test_benchmark_timing_and_tuning_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timing and tuning loops, with ``do_bench`` replaced by one call (no CUDA events
    on the CPU): every case runs, and the tuning limits are restored."""
    import triton.testing

    bench = _bench()
    calls: list[int] = []

    def one_call(fn: Callable[[], Any], **kwargs: Any) -> float:
        fn()
        calls.append(1)
        return 1.0

    monkeypatch.setattr(triton.testing, "do_bench", one_call)
    monkeypatch.setattr(bench, "ROW_SHAPES", [(2, 37)])
    monkeypatch.setattr(bench, "ELEMENTWISE", 100)
    monkeypatch.setattr(bench, "TUNE_GRID", {"block_wide": [16, 32], "elementwise_wide": [32]})
    before = dict(L.LIMITS)
    rows = bench.tune("cpu", budget_s=600)
    assert L.LIMITS == before
    assert len(rows) == 3 * len(bench.TUNE_CASES) and all(r["ms"] == 1.0 for r in rows)
    for case in bench.CASES:
        shape = (2, 37) if case.kind == "rows" else (100,)
        inp = case.make(shape, torch.float32, "cpu", torch.Generator().manual_seed(0))
        t = bench.time_case(case, inp, use_compile=False)
        assert t["ours_ms"] == 1.0 and t["eager_ms"] == 1.0 and t["compile_ms"] is None
        assert case.bytes(inp) > 0


# ---------------------------------------------------------------- the outer session

if not INTERPRETED:
    for _name in [name for name in list(globals()) if name.startswith("test_")]:
        del globals()[_name]

    def test_kernels_under_the_interpreter() -> None:
        """Every test of this module, run by a fresh pytest with ``TRITON_INTERPRET=1``."""
        root = Path(__file__).resolve().parents[1]
        env = dict(os.environ, TRITON_INTERPRET="1")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__).resolve())],
            cwd=root, env=env, capture_output=True, text=True, timeout=1500,
        )
        tail = (proc.stdout[-12000:] + proc.stderr[-3000:]).strip()
        assert proc.returncode == 0, tail
        assert " passed" in tail and "failed" not in tail, tail
