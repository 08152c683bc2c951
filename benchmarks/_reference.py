"""A trusted log-sum-exp for the Dask benchmarks: 80-bit extended precision, chunk by chunk.

mpmath is too slow for 10^9 terms, so the benchmarks' reference is computed in x87 extended
precision (``numpy.longdouble``: 64-bit significand, unit roundoff ``2**-64``), which is 11
bits more than float64, over the same chunks, merged with the same identity:

    S_j = sum_i exp(x_i - m_j),   m_j = max_i x_i of chunk j   (in long double)
    LSE = M + log sum_j S_j exp(m_j - M),   M = max_j m_j

Error bound (``eps_L = 2**-64``): each ``x_i - m_j`` is rounded once (relative ``eps_L``,
absolute ``eps_L |x_i - m_j|``), which ``exp`` turns into a relative error of
``eps_L |x_i - m_j|``; ``expl`` adds at most one ``eps_L``; NumPy's pairwise sum adds at
most ``(log2(n) + 8) eps_L`` relative for non-negative terms; each merge factor
``exp(m_j - M)`` (its argument exact) one ``eps_L``, and the merged sum of the chunks
``(log2(chunks) + 8) eps_L``.  So ``|S~ / S - 1| <= eps_L (2 + G + log2 n + log2 c + 16)``
with ``G = max |x_i - m_j|``, and the absolute error of the result is at most that plus
``eps_L |LSE|`` for the final logarithm and addition (both in long double) and the
rounding to float64 is not applied to the reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

EPS_L = float(np.finfo(np.longdouble).eps) / 2  # unit roundoff of long double

if np.finfo(np.longdouble).nmant < 63:  # pragma: no cover - e.g. aarch64, where long double is binary128 or float64
    raise SystemExit("these benchmarks need an 80-bit long double (x86-64) for their reference")


def chunk_state(x: np.ndarray) -> tuple[np.longdouble, np.longdouble, float]:
    """``(m_j, S_j, G_j)`` of one chunk of finite float64 values."""
    m = np.longdouble(np.max(x))
    d = x.astype(np.longdouble) - m
    return m, np.sum(np.exp(d)), float(-np.min(d))


def merge(states: Iterable[tuple[np.longdouble, np.longdouble, float]], n: int) -> tuple[float, float, np.longdouble]:
    """``(reference rounded to float64, absolute error bound, reference in long double)``."""
    ms, ss, gaps = zip(*states, strict=True)
    m_all = np.array(ms, dtype=np.longdouble)
    big_m = np.max(m_all)
    s = np.sum(np.array(ss, dtype=np.longdouble) * np.exp(m_all - big_m))
    ref = big_m + np.log(s)
    rel = EPS_L * (2 + max(gaps) + math.log2(max(n, 2)) + math.log2(max(len(ms), 2)) + 16)
    bound = rel + EPS_L * abs(float(ref))
    return float(ref), bound, ref


def ulps(got: float, ref: np.longdouble) -> float:
    """Distance from a float64 result to the long-double reference, in ULPs of float64."""
    return float(abs(np.longdouble(got) - ref) / np.longdouble(np.spacing(abs(float(ref)))))
