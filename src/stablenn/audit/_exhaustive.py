"""Every float32 input: ``stablenn audit FUNCTION --dtype float32 --exhaustive``.

mpmath takes tens of microseconds per input; 2**32 inputs would take days.  Instead each
input gets a float64 *reference* whose error is bounded (below), and the reference
decides the correctly rounded float32 result by itself unless it lies too close to a
rounding boundary of float32 (a midpoint between two neighbouring float32 values, or the
overflow threshold ``2**128 - 2**103``); only those few inputs, and ``+-inf``, go to the
mpmath oracle (`stablenn.audit._oracle.elementwise`).  NaN inputs must give NaN.

The error bound (derived in ``docs/audit.md``)
-----------------------------------------------
Let ``u = 2**-53`` (one rounding of ``+ - * /`` in float64) and assume each NumPy float64
``exp``, ``log``, ``log1p`` and ``tanh`` returns a value within relative error
``eps = 2**-46`` of the exact one: 64 float64 ULPs, 32 to 64 times the tolerance NumPy's
own accuracy tests enforce (1 ULP for exp, log, log1p; 2 for tanh).  Each reference in
`reference64` then has relative error at most ``3 eps + 5 u < 2**-44 =`` `REL_BOUND`,
plus an absolute error below `ABS_BOUND` ``= 2**-1000`` where float64 underflows (results
below ``2**-1022``, far below float32's smallest midpoint ``2**-150``).  The float64
reference ``r`` and the exact value ``f`` then satisfy
``|r - f| <= REL_BOUND |r| / (1 - REL_BOUND) + ABS_BOUND``, so whenever the distance from
``r`` to the nearest float32 rounding boundary exceeds ``2 REL_BOUND |r| + 2 ABS_BOUND``,
``r`` and ``f`` lie between the same two boundaries and round to the same float32: the
rounding of ``r`` (exact in NumPy: a float64 to float32 conversion rounds to nearest even)
is the correctly rounded result.  As a check of the assumption, every input sent to mpmath
is also compared with the reference at 113 bits (``bound_checked``, ``worst_rel_error``).

Work is split in chunks of the bit patterns, run on every core (``spawn`` workers, so
PyTorch and JAX start clean), with a progress line and an estimate of the time left.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import _oracle
from ._ulp import FORMATS, from_ordinal, ordinal, ulp_distance

__all__ = ["ABS_BOUND", "EXHAUSTIVE_FUNCTIONS", "REL_BOUND", "Summary", "decide", "format_exhaustive", "reference64", "run_exhaustive"]

EXHAUSTIVE_FUNCTIONS: tuple[str, ...] = _oracle.ELEMENTWISE
REL_BOUND = 2.0**-44
ABS_BOUND = 2.0**-1000
_F32 = FORMATS["float32"]
_OVER = 2.0**128 - 2.0**103  # float32 overflow threshold: max + half an ULP
DEFAULT_CHUNK = 1 << 22


def reference64(function: str, x: np.ndarray) -> np.ndarray:
    """The float64 reference of `function` at float32 inputs `x` (finite or not).

    Each formula's error is within `REL_BOUND` relative plus `ABS_BOUND` absolute (module
    notes); comments name the identity used and the cancellation it avoids.

    >>> reference64("sigmoid", np.array([0.0, -800.0], dtype=np.float32)).tolist()
    [0.5, 0.0]
    """
    a = np.asarray(x, dtype=np.float32).astype(np.float64)
    with np.errstate(all="ignore"):
        if function in ("sigmoid", "sigmoid_via_tanh"):
            # sigma(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, e = e**-|x| <= 1
            e = np.exp(-np.abs(a))
            return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        if function == "log_sigmoid":
            # log sigma(x) = min(x, 0) - log1p(e**-|x|): terms of one sign, no cancellation
            return np.minimum(a, 0.0) - np.log1p(np.exp(-np.abs(a)))
        if function == "softplus":
            # softplus(x) = max(x, 0) + log1p(e**-|x|): terms of one sign
            return np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a)))
        if function == "logit":
            # p >= 1/4: log1p((2p - 1) / (1 - p)), 2p - 1 and 1 - p exact in float64 for
            # float32 p (no log of a ratio near 1); p < 1/4: log(p) - log1p(-p), whose
            # terms are at most 1.3 times the result.
            hi = np.log1p((2.0 * a - 1.0) / (1.0 - a))
            lo = np.log(a) - np.log1p(-a)
            out = np.where(a >= 0.25, hi, lo)
            return np.where((a < 0) | (a > 1), np.nan, out)
        if function in ("tanh", "tanh_via_sigmoid"):
            return np.tanh(a)
        if function == "sigmoid_grad":
            # sigma'(x) = e / (1 + e)**2, e = e**-|x| <= 1: no 1 - sigma cancellation
            e = np.exp(-np.abs(a))
            return e / ((1.0 + e) * (1.0 + e))
        if function == "tanh_grad":
            # tanh'(x) = 4 e / (1 + e)**2, e = e**-2|x| (2|x| exact)
            e = np.exp(-2.0 * np.abs(a))
            return 4.0 * e / ((1.0 + e) * (1.0 + e))
        if function == "sigmoid_grad_from_output":
            return a * (1.0 - a)
        if function == "tanh_grad_from_output":
            return (1.0 - a) * (1.0 + a)
    raise ValueError(function)


def decide(ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float32 rounding of each reference, and which ones are too close to call.

    Returns ``(rounded, doubtful)``: `rounded` is the float32 nearest each reference
    (correct wherever `doubtful` is False), `doubtful` marks references within
    ``2 REL_BOUND |r| + 2 ABS_BOUND`` of a rounding boundary, or not finite.

    >>> r, d = decide(np.array([0.5, 1.0 + 2.0**-24, 3.0]))   # 1 + 2**-24 is a midpoint
    >>> r.tolist(), d.tolist()
    ([0.5, 1.0, 3.0], [False, True, False])
    """
    ref = np.asarray(ref, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        r = ref.astype(np.float32)
        a = r.astype(np.float64)
        up = np.nextafter(r, np.float32(np.inf)).astype(np.float64)
        dn = np.nextafter(r, np.float32(-np.inf)).astype(np.float64)
        mid_up = np.where(np.isinf(up), _OVER, (a + up) / 2)
        mid_dn = np.where(np.isinf(dn), -_OVER, (a + dn) / 2)
        pos_inf, neg_inf = r == np.inf, r == -np.inf
        mid_up = np.where(pos_inf, np.nan, np.where(neg_inf, -_OVER, mid_up))
        mid_dn = np.where(pos_inf, _OVER, np.where(neg_inf, np.nan, mid_dn))
        dist = np.fmin(np.abs(ref - mid_up), np.abs(ref - mid_dn))
        margin = 2 * REL_BOUND * np.abs(ref) + 2 * ABS_BOUND
        doubtful = ~(dist > margin) | ~np.isfinite(ref)
    return r, doubtful


@dataclass
class Summary:
    """The exhaustive result of one implementation (merged over chunks)."""

    function: str
    impl: str
    label: str = ""
    inputs: int = 0
    not_correctly_rounded: int = 0
    above_1ulp: int = 0
    max_ulp: float = 0.0
    worst_input: float = math.nan
    worst_got: float = math.nan
    worst_exact: float = math.nan
    nan_where_finite: int = 0
    inf_where_finite: int = 0
    nan_inputs_not_nan: int = 0
    to_mpmath: int = 0
    bound_checked: int = 0
    bound_violations: int = 0
    worst_rel_error: float = 0.0
    seconds: float = 0.0
    processes: int = 1
    complete: bool = True
    ranges: list[list[float]] = field(default_factory=list)

    def merge(self, other: Summary) -> None:
        if other.max_ulp > self.max_ulp or (self.inputs == 0 and other.inputs):
            self.max_ulp, self.worst_input, self.worst_got, self.worst_exact = (
                other.max_ulp,
                other.worst_input,
                other.worst_got,
                other.worst_exact,
            )
        for k in (
            "inputs",
            "not_correctly_rounded",
            "above_1ulp",
            "nan_where_finite",
            "inf_where_finite",
            "nan_inputs_not_nan",
            "to_mpmath",
            "bound_checked",
            "bound_violations",
        ):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.worst_rel_error = max(self.worst_rel_error, other.worst_rel_error)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- worker side

_IMPLS: dict[tuple[str, str], Any] = {}


def _impl(function: str, name: str) -> Any:
    key = (function, name)
    if key not in _IMPLS:
        from ._peers import make

        impl = make(function, "float32", name)
        if isinstance(impl, str):
            raise ValueError(impl)
        if impl.backend == "torch":
            import torch

            torch.set_num_threads(1)
        _IMPLS[key] = impl
    return _IMPLS[key]


def _call(impl: Any, x: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return impl.numpy(impl.fn(impl.array(x, "float32")), "float32")


def _exact_of(function: str, x: np.ndarray) -> tuple[np.ndarray, int, int, int, float]:
    """Correctly rounded float32 values at `x` (finite or inf, no NaN): the reference where it
    decides, mpmath elsewhere; and the check of the reference's bound at the mpmath inputs."""
    ref = reference64(function, x)
    rounded, doubtful = decide(ref)
    finite_in = np.isfinite(x)
    domain_nan = finite_in & np.isnan(ref)  # logit outside [0, 1]: exactly NaN
    doubtful &= ~domain_nan
    exact = rounded.copy()
    exact[domain_nan] = np.nan
    idx = np.flatnonzero(doubtful)
    checked = violations = 0
    worst_rel = 0.0
    if idx.size:
        exact[idx] = _oracle.elementwise(function, x[idx], "float32")
        if function not in ("sigmoid_grad_from_output", "tanh_grad_from_output"):
            import mpmath

            for i in idx.tolist():
                if not math.isfinite(float(x[i])):
                    continue
                f = _oracle.exact_elementwise(function, float(x[i]), prec=113)
                if not mpmath.isfinite(f):
                    continue
                err = abs(mpmath.mpf(float(ref[i])) - f)
                checked += 1
                if err > REL_BOUND * abs(f) + ABS_BOUND:
                    violations += 1
                if f != 0:
                    worst_rel = max(worst_rel, float(err / abs(f)))
    return exact, int(idx.size), checked, violations, worst_rel


def _chunk(function: str, names: Sequence[str], kind: str, start: int, stop: int) -> list[Summary]:
    """Worker: one chunk of ordinals (``kind="ordinals"``) or NaN/-0 bit patterns."""
    if kind == "ordinals":
        x = from_ordinal(np.arange(start, stop, dtype=np.int64), _F32)
    else:
        x = np.arange(start, stop, dtype=np.uint64).astype(np.uint32).view(np.float32)
    out = []
    nan_in = np.isnan(x)
    xs = x[~nan_in]
    exact, sent, checked, violations, worst_rel = _exact_of(function, xs) if xs.size else (np.zeros(0, np.float32), 0, 0, 0, 0.0)
    for n, name in enumerate(names):
        impl = _impl(function, name)
        t0 = time.perf_counter()
        got_all = _call(impl, x)
        s = Summary(function, name, impl.label)
        s.inputs = int(x.size)
        s.nan_inputs_not_nan = int(np.sum(nan_in & ~np.isnan(got_all)))
        got = got_all[~nan_in]
        if got.size:
            u = ulp_distance(got, exact, _F32)
            s.not_correctly_rounded = int(np.sum(u > 0))
            s.above_1ulp = int(np.sum(u > 1))
            e64 = exact.astype(np.float64)
            g64 = got.astype(np.float64)
            fin = np.isfinite(e64)
            s.nan_where_finite = int(np.sum(np.isnan(g64) & fin))
            s.inf_where_finite = int(np.sum(np.isinf(g64) & fin))
            w = int(np.argmax(u))
            s.max_ulp = float(u[w])
            s.worst_input, s.worst_got, s.worst_exact = float(xs[w]), float(g64[w]), float(e64[w])
        if n == 0:
            s.to_mpmath, s.bound_checked, s.bound_violations, s.worst_rel_error = sent, checked, violations, worst_rel
        s.seconds = time.perf_counter() - t0
        out.append(s)
    return out


def _chunk_args(args: tuple[Any, ...]) -> list[Summary]:
    return _chunk(*args)


# ---------------------------------------------------------------- driver


def _plan(bounds: tuple[float, float] | None, chunk: int) -> list[tuple[str, int, int]]:
    """Chunks of work: ordinal ranges over the finite floats and +-inf, then -0 and the NaNs."""
    if bounds is not None:
        o_lo, o_hi = (int(v) for v in ordinal(np.array(bounds, dtype=np.float32), _F32))
        lo, hi, extra = o_lo, o_hi + 1, False
    else:
        lo, hi, extra = -_F32.max_ordinal, _F32.max_ordinal + 1, True
    out = [("ordinals", s, min(s + chunk, hi)) for s in range(lo, hi, chunk)]
    if extra:
        out.append(("patterns", 0x80000000, 0x80000001))  # -0 (ordinal 0 is +0)
        for start, stop in ((0x7F800001, 0x80000000), (0xFF800001, 0x100000000)):
            out += [("patterns", s, min(s + chunk, stop)) for s in range(start, stop, chunk)]
    return out


def _progress(stream: Any, done: int, total: int, t0: float) -> None:
    elapsed = time.perf_counter() - t0
    frac = done / total if total else 1.0
    left = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
    bar = "#" * int(30 * frac)
    stream.write(
        f"\r[{bar:<30}] {frac:6.1%}  {done:,}/{total:,} inputs  {_dur(elapsed)} elapsed, about {_dur(left)} left "
    )
    stream.flush()


def _dur(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def run_exhaustive(
    function: str,
    *,
    impls: Sequence[str] = ("stablenn",),
    bounds: tuple[float, float] | None = None,
    processes: int | None = None,
    chunk: int | None = None,
    progress: Any = None,
) -> list[Summary]:
    """Run every float32 input (or every one in `bounds`) through each implementation.

    Parameters
    ----------
    function : str
        An elementwise function (`EXHAUSTIVE_FUNCTIONS`).
    impls : sequence of str
        Implementation names (`stablenn.audit._peers`).
    bounds : (float, float), optional
        Only the float32 values in ``[lo, hi]`` (then NaN inputs are not run).
    processes : int, optional
        Worker processes (default: every core); 1 runs in this process.
    chunk : int, optional
        Inputs per chunk (default 2**22).
    progress : stream, optional
        Where to write the progress line (stderr from the command).

    >>> s = run_exhaustive("sigmoid", bounds=(1.0, 1.0009765625), processes=1)[0]
    >>> s.inputs, s.max_ulp <= 1
    (8193, True)
    """
    chunk = chunk or DEFAULT_CHUNK
    processes = processes or os.cpu_count() or 1
    work = _plan(bounds, chunk)
    total = sum(stop - start for _, start, stop in work)
    merged = [Summary(function, name) for name in impls]
    t0 = time.perf_counter()
    done = 0

    def absorb(parts: list[Summary], size: int) -> None:
        nonlocal done
        for m, p in zip(merged, parts, strict=True):
            m.label = p.label
            m.merge(p)
        done += size
        if progress is not None:
            _progress(progress, done, total, t0)

    args = [(function, tuple(impls), kind, start, stop) for kind, start, stop in work]
    if processes <= 1 or len(args) == 1:
        for a in args:
            absorb(_chunk(*a), a[4] - a[3])
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(processes) as pool:
            sizes = {a[3]: a[4] - a[3] for a in args}
            for a, parts in zip(args, pool.imap(_chunk_args, args, chunksize=1), strict=True):
                absorb(parts, sizes[a[3]])
    if progress is not None:
        progress.write("\n")
        progress.flush()
    elapsed = time.perf_counter() - t0
    for m in merged:
        m.seconds = elapsed
        m.processes = processes
        m.complete = bounds is None
        m.ranges = [list(bounds)] if bounds is not None else []
    return merged


def format_exhaustive(results: Sequence[Summary], *, markdown: bool = False) -> str:
    """The exhaustive results as text (or a Markdown table)."""
    if not results:
        return ""
    r0 = results[0]
    scope = "every float32 input (2**32)" if r0.complete else f"every float32 input in [{r0.ranges[0][0]!r}, {r0.ranges[0][1]!r}]"
    head = ["implementation", "inputs", "max ULP", "not correctly rounded", "> 1 ULP", "NaN/inf where finite", "worst input (got, exact)"]
    rows = []
    for s in results:
        rows.append(
            [
                f"{s.impl} ({s.label})",
                f"{s.inputs:,}",
                f"{s.max_ulp:g}",
                f"{s.not_correctly_rounded:,}",
                f"{s.above_1ulp:,}",
                f"{s.nan_where_finite + s.inf_where_finite:,}",
                f"{s.worst_input!r} ({s.worst_got!r}, {s.worst_exact!r})" if s.max_ulp > 0 else "-",
            ]
        )
    notes = [
        f"{r0.function} in float32, {scope}: error in ULP against the correctly rounded value",
        (
            f"reference: float64 (relative error <= 2**-44, proof in docs/audit.md); {r0.to_mpmath:,} inputs too close "
            f"to a rounding boundary went to mpmath; there the reference's error was checked: "
            f"{r0.bound_violations} of {r0.bound_checked} above the bound (largest relative error {r0.worst_rel_error:.3g})"
        ),
        f"time: {_dur(r0.seconds)} wall on {r0.processes} processes",
    ]
    if any(s.nan_inputs_not_nan for s in results):
        notes.append("NaN inputs not giving NaN: " + ", ".join(f"{s.impl} {s.nan_inputs_not_nan}" for s in results))
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * 5 + ["---"]) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join([notes[0], ""] + out + [""] + notes[1:])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = [notes[0], ""]
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines + [""] + notes[1:])


if __name__ == "__main__":  # pragma: no cover - python -m stablenn.audit._exhaustive FUNCTION
    name = sys.argv[1] if len(sys.argv) > 1 else "sigmoid"
    print(format_exhaustive(run_exhaustive(name, progress=sys.stderr)))
