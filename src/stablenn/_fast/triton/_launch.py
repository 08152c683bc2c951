"""Launch wrappers: PyTorch tensors in, PyTorch tensors out, no autograd.

Every wrapper takes tensors already validated by the public layer (floating dtype float32,
float16 or bfloat16, same device, the reduced axis last) and returns fresh contiguous
results in the input's dtype.  Layout is handled here, explicitly: a row kernel needs a
``(rows, n)`` view with unit stride along ``n``; when the tensor has no such view it is
copied once with ``.contiguous()``.  bfloat16 tensors reach the kernels as int16 views (see
``_math.load_ct``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch

from . import _kernels as K

__all__: list[str] = []

# Tuning limits; the tests lower them to reach every code path on small shapes.
LIMITS = {
    # rows of at most this many entries are loaded once and kept in registers
    "single_wide": 4096,  # float32 data (float64 arithmetic)
    "single_half": 8192,
    # chunk length of the rows that are walked
    "block_wide": 2048,
    "block_half": 4096,
    # elementwise block
    "elementwise_wide": 1024,
    "elementwise_half": 2048,
    # log-sum-exp splits a row across programs when there are fewer rows than this
    # many per streaming multiprocessor, and the row spans at least two chunks
    "split_rows_per_sm": 2,
    "max_split": 1024,
    # warps per program: one per this many elements of a block (at most 16)
    "elements_per_warp": 256,
}

_COMPUTE = {torch.float32: torch.float64, torch.float16: torch.float32, torch.bfloat16: torch.float32}
_KIND = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def kind(dtype: torch.dtype) -> int:
    return _KIND[dtype]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float32 data, float32 for the 16-bit dtypes."""
    return _COMPUTE[dtype]


def _arg(t: torch.Tensor) -> torch.Tensor:
    """What the kernel receives: bfloat16 as its int16 bits."""
    return t.view(torch.int16) if t.dtype == torch.bfloat16 else t


def interpreted() -> bool:
    return type(K._unary_kernel).__name__ == "InterpretedFunction"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The interpreter runs the kernels with NumPy, which warns where the GPU silently
    overflows to inf by design (casting a float64 inf to float32, masked lanes): silence it."""
    if interpreted():
        import numpy as np

        with np.errstate(all="ignore"):
            yield
    else:
        yield


def _launch(kernel: Any, grid: tuple[int, ...], *args: Any, num_warps: int = 4, **meta: Any) -> None:
    with _quiet():
        kernel[grid](*args, num_warps=num_warps, enable_fp_fusion=True, **meta)


def _warps(block: int) -> int:
    return max(1, min(16, block // LIMITS["elements_per_warp"]))


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def row_plan(n: int, dtype: torch.dtype) -> tuple[int, bool]:
    """``(BLOCK, SINGLE)`` for rows of length ``n``."""
    wide = dtype == torch.float32
    single_max = LIMITS["single_wide" if wide else "single_half"]
    if n <= single_max:
        return max(16, _next_pow2(n)), True
    return LIMITS["block_wide" if wide else "block_half"], False


def rows_view(x: torch.Tensor) -> torch.Tensor:
    """A ``(rows, n)`` view of ``x`` with unit stride along ``n`` (a copy when there is none)."""
    n = x.shape[-1]
    rows = x.numel() // n if n else 0
    if x.stride(-1) != 1 and n > 1:
        x = x.contiguous()
    try:
        v = x.view(rows, n)
    except RuntimeError:  # leading axes cannot be merged into one stride: copy
        v = x.contiguous().view(rows, n)
    if rows > 1 and v.stride(0) < n:
        v = v.contiguous()
    return v


def flat(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous().view(-1)


def _elementwise_block(dtype: torch.dtype) -> int:
    return LIMITS["elementwise_wide" if dtype == torch.float32 else "elementwise_half"]


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 4
    return int(torch.cuda.get_device_properties(device).multi_processor_count)


# ---------------------------------------------------------------- log-sum-exp


def _out(out: torch.Tensor | None, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A fresh contiguous result, or the caller's ``out`` (checked: the benchmark poisons it)."""
    if out is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    assert out.is_contiguous() and out.dtype == like.dtype and out.numel() == math.prod(shape)
    return out.view(shape)


def logsumexp(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Log-sum-exp over the last axis; shape ``x.shape[:-1]``, dtype of ``x``."""
    v = rows_view(x)
    rows, n = v.shape
    out = _out(out, (rows,), x)
    block, single = row_plan(n, x.dtype)
    if not single:
        block = LIMITS["block_wide" if x.dtype == torch.float32 else "block_half"]
    chunks = math.ceil(n / block)
    want = LIMITS["split_rows_per_sm"] * _sm_count(x.device)
    n_split = 1
    if rows < want and chunks >= 2:
        n_split = min(chunks, math.ceil(want / max(rows, 1)), LIMITS["max_split"])
    if n_split <= 1:
        _launch(
            K._lse_kernel, (rows, 1), _arg(v), _arg(out), out, out, out, n, v.stride(0), n, 1,
            BLOCK=block, IN_KIND=kind(x.dtype), PARTIAL=False, num_warps=_warps(block),
        )
        return out.view(x.shape[:-1])
    seg = math.ceil(math.ceil(n / n_split) / block) * block
    n_split = math.ceil(n / seg)
    ct = compute_dtype(x.dtype)
    m = torch.empty(rows * n_split, dtype=ct, device=x.device)
    r = torch.empty(rows * n_split, dtype=ct, device=x.device)
    c = torch.empty(2 * rows * n_split, dtype=torch.int32, device=x.device)
    _launch(
        K._lse_kernel, (rows, n_split), _arg(v), _arg(out), m, r, c, n, v.stride(0), seg, n_split,
        BLOCK=block, IN_KIND=kind(x.dtype), PARTIAL=True, num_warps=_warps(block),
    )
    split_p2 = max(16, _next_pow2(n_split))
    _launch(
        K._lse_merge_kernel, (rows,), m, r, c, _arg(out), n_split,
        SPLIT=split_p2, IN_KIND=kind(x.dtype), num_warps=_warps(split_p2),
    )
    return out.view(x.shape[:-1])


# ---------------------------------------------------------------- softmax, log-softmax


def softmax(
    x: torch.Tensor, log: bool, g: torch.Tensor | None = None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """softmax (or log-softmax) over the last axis; with ``g`` (shape ``x.shape[:-1]``), the
    softmax times ``g`` per row: the derivative of log-sum-exp."""
    v = rows_view(x)
    rows, n = v.shape
    y = _out(out, (rows, n), x)
    block, single = row_plan(n, x.dtype)
    gg = y if g is None else _arg(flat(g.to(x.dtype)))
    _launch(
        K._softmax_kernel, (rows,), _arg(v), _arg(y), gg, n, v.stride(0), n,
        BLOCK=block, IN_KIND=kind(x.dtype), LOG=log, HAS_G=g is not None, SINGLE=single,
        num_warps=_warps(block),
    )
    return y.view(x.shape)


def softmax_backward(
    y: torch.Tensor, dy: torch.Tensor, log: bool, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Gradient of softmax (``log=False``) or log-softmax from the saved output ``y``."""
    yv = rows_view(y)
    dyv = rows_view(dy.to(y.dtype))
    rows, n = yv.shape
    dx = _out(out, (rows, n), y)
    block, single = row_plan(n, y.dtype)
    _launch(
        K._softmax_bwd_kernel, (rows,), _arg(yv), _arg(dyv), _arg(dx), n,
        yv.stride(0), dyv.stride(0), n,
        BLOCK=block, IN_KIND=kind(y.dtype), LOG=log, SINGLE=single, num_warps=_warps(block),
    )
    return dx.view(y.shape)


# ---------------------------------------------------------------- cross-entropy


def _split_float(value: float) -> tuple[float, float]:
    """``value`` as two float32 numbers whose sum carries 48 bits (Triton passes Python
    floats to kernels as float32)."""
    hi = float(torch.tensor(value, dtype=torch.float32))
    lo = float(torch.tensor(value - hi, dtype=torch.float32))
    return hi, lo


def cross_entropy(
    x: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int | None,
    smoothing: float,
    reduction: str,
    want_grad: bool,
    grad_out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Cross-entropy with class indices (classes last); returns ``(loss, grad)`` where
    ``grad`` (only with ``want_grad``) is d(loss)/d(x) for an upstream gradient of 1."""
    v = rows_view(x)
    rows, n = v.shape
    ct = compute_dtype(x.dtype)
    t = flat(targets)
    w = None if weight is None else flat(weight.to(x.dtype))
    ignored = None if ignore_index is None else t == ignore_index
    den = wsum = None
    if reduction == "mean" or want_grad:
        valid = (t >= 0) & (t < n)
        safe = torch.where(valid, t, torch.zeros_like(t))
        w_t = torch.ones(rows, dtype=ct, device=x.device) if w is None else w.to(ct)[safe]
        if ignored is not None:
            w_t = torch.where(ignored, torch.zeros_like(w_t), w_t)
        den = w_t.sum(dtype=ct).reshape(1)
    if w is not None:
        wsum = w.sum(dtype=ct).reshape(1)
    loss = torch.empty(rows, dtype=ct, device=x.device)
    grad = _out(grad_out, (rows, n), x) if want_grad else None
    block, single = row_plan(n, x.dtype)
    eps_hi, eps_lo = _split_float(smoothing)
    ignore = 0 if ignore_index is None else int(ignore_index)
    _launch(
        K._ce_kernel, (rows,),
        _arg(v), t, loss if w is None else _arg(w), loss,
        loss if grad is None else _arg(grad),
        loss if den is None else den, loss if wsum is None else wsum,
        n, v.stride(0), n, ignore, eps_hi, eps_lo,
        BLOCK=block, IN_KIND=kind(x.dtype), HAS_W=w is not None,
        HAS_IGNORE=ignore_index is not None, SMOOTH=smoothing != 0.0,
        WRITE_GRAD=want_grad, MEAN=reduction == "mean", SINGLE=single, num_warps=_warps(block),
    )
    if reduction == "none":
        out = loss.to(x.dtype).view(x.shape[:-1])
    else:
        total = loss.sum(dtype=torch.float64)
        if reduction == "mean":
            assert den is not None
            total = total / den.to(torch.float64)[0]
        out = total.to(x.dtype)
    if grad is not None:
        grad = grad.view(x.shape)
    return out, grad


def scale_rows(g: torch.Tensor, dy: torch.Tensor, per_row: bool) -> torch.Tensor:
    """``g *= dy`` in place (``g`` contiguous, shape ``(..., n)``); rows whose factor is 1
    are skipped on the device, without a host synchronisation."""
    n = g.shape[-1]
    v = g.view(-1, n)
    rows = v.shape[0]
    d = flat(dy.to(g.dtype))
    block, _ = row_plan(n, g.dtype)
    block = min(block, LIMITS["block_wide" if g.dtype == torch.float32 else "block_half"])
    _launch(
        K._scale_rows_kernel, (rows,), _arg(v), _arg(d), n, n,
        BLOCK=block, IN_KIND=kind(g.dtype), PER_ROW=per_row, num_warps=_warps(block),
    )
    return g


# ---------------------------------------------------------------- binary cross-entropy


def _periodic(a: torch.Tensor | None, shape: torch.Size) -> tuple[torch.Tensor | None, int]:
    """An argument broadcast to ``shape`` as ``(flat values, period)``: element ``i`` of the
    broadcast array is ``values[i % period]``.  A trailing block (e.g. one weight per class)
    is kept as it is; any other broadcast is materialised, explicitly."""
    if a is None:
        return None, 1
    numel = math.prod(shape)
    if a.is_contiguous():
        return a.reshape(-1), max(numel, 1)
    strides = a.stride()
    k = 0  # leading axes with stride 0 (pure broadcast)
    while k < a.dim() and strides[k] == 0:
        k += 1
    tail = a[(0,) * k] if k else a
    if tail.is_contiguous():
        return tail.reshape(-1), max(tail.numel(), 1)
    return a.contiguous().reshape(-1), max(numel, 1)


def bce(
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None,
    pos_weight: torch.Tensor | None,
    reduction: str,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    xf, yf = flat(x), flat(y.to(x.dtype))
    numel = xf.numel()
    w, wp = _periodic(None if weight is None else weight.to(x.dtype), x.shape)
    pw, pwp = _periodic(None if pos_weight is None else pos_weight.to(x.dtype), x.shape)
    block = _elementwise_block(x.dtype)
    grid = (math.ceil(numel / block),)
    ct = compute_dtype(x.dtype)
    reduce = reduction != "none"
    out = _out(out, (numel,), x) if not reduce else None
    part = torch.empty(grid[0], dtype=ct, device=x.device) if reduce else None
    dummy = out if out is not None else part
    _launch(
        K._bce_kernel, grid, _arg(xf), _arg(yf),
        dummy if w is None else _arg(w), dummy if pw is None else _arg(pw),
        dummy if out is None else _arg(out), dummy if part is None else part,
        numel, wp, pwp,
        BLOCK=block, IN_KIND=kind(x.dtype), HAS_W=w is not None, HAS_PW=pw is not None,
        REDUCE=reduce, num_warps=_warps(block),
    )
    if out is not None:
        return out.view(x.shape)
    assert part is not None
    total = part.sum(dtype=torch.float64)
    if reduction == "mean":
        total = total / numel
    return total.to(x.dtype)


def bce_backward(
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None,
    pos_weight: torch.Tensor | None,
    reduction: str,
    dout: torch.Tensor,
    want_dt: bool,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    xf, yf = flat(x), flat(y.to(x.dtype))
    numel = xf.numel()
    w, wp = _periodic(None if weight is None else weight.to(x.dtype), x.shape)
    pw, pwp = _periodic(None if pos_weight is None else pos_weight.to(x.dtype), x.shape)
    dx = _out(out, (numel,), x)
    dt = torch.empty(numel, dtype=x.dtype, device=x.device) if want_dt else None
    scalar = reduction != "none"
    d = flat(dout.to(x.dtype))
    block = _elementwise_block(x.dtype)
    _launch(
        K._bce_bwd_kernel, (math.ceil(numel / block),), _arg(xf), _arg(yf),
        dx if w is None else _arg(w), dx if pw is None else _arg(pw), _arg(d), _arg(dx),
        _arg(dx) if dt is None else _arg(dt), numel, wp, pwp, max(numel, 1),
        BLOCK=block, IN_KIND=kind(x.dtype), HAS_W=w is not None, HAS_PW=pw is not None,
        DY_SCALAR=scalar, MEAN=reduction == "mean", WANT_DT=want_dt, num_warps=_warps(block),
    )
    return dx.view(x.shape), None if dt is None else dt.view(x.shape)


# ---------------------------------------------------------------- sigmoid family

OPS = {
    "sigmoid": 0,
    "log_sigmoid": 1,
    "softplus": 2,
    "sigmoid_grad": 3,
    "tanh": 4,
    "tanh_grad": 5,
    "sigmoid_neg": 6,
}


def unary(
    x: torch.Tensor, op: str, dy: torch.Tensor | None = None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``f(x)`` or ``dy * f(x)`` elementwise."""
    xf = flat(x)
    numel = xf.numel()
    out = _out(out, (numel,), x)
    d = out if dy is None else _arg(flat(dy.to(x.dtype)))
    block = _elementwise_block(x.dtype)
    _launch(
        K._unary_kernel, (math.ceil(numel / block),), _arg(xf), d, _arg(out), numel,
        BLOCK=block, IN_KIND=kind(x.dtype), OP=OPS[op], HAS_DY=dy is not None,
        num_warps=_warps(block),
    )
    return out.view(x.shape)
