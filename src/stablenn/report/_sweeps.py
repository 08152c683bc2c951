"""Error against input: a naive formula and stablenn, measured in ULP against the mpmath oracle.

A sweep runs over a grid of inputs in each dtype: every implementation is evaluated on the
same rounded inputs, the audit's oracle (`stablenn.audit._oracle`) gives the correctly
rounded exact values, and `stablenn.audit._ulp.ulp_distance` the error.  The naive
formulas are evaluated by the audit's own naive evaluator (`stablenn.audit._expr`), which
rounds every operation to the format as a program in that format would.

`bad_intervals` names the stretches of the grid where the first implementation (the naive
one) exceeds the budget or returns NaN or an infinity where the exact value is finite;
`plot_sweep` draws one panel per dtype with those stretches shaded.

>>> bad_intervals(np.array([0.0, 1, 2, 3, 4, 5]), np.array([False, True, True, False, False, True]))
[(1.0, 2.0), (5.0, 5.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Impl",
    "Panel",
    "Series",
    "Sweep",
    "bad_intervals",
    "elementwise_sweep",
    "format_intervals",
    "plot_sweep",
    "vector_sweep",
]

#: where NaN and infinite results are drawn (above every finite ULP distance)
NONFINITE_LEVEL = 1e20
#: runs of bad grid points separated by at most this many good ones form one interval
BRIDGE = 3


@dataclass
class Impl:
    """One implementation in a sweep: a label and ``fn(x, dtype) -> values`` (storage dtype)."""

    label: str
    fn: Callable[[np.ndarray, str], np.ndarray]
    role: str = "naive"  #: "naive", "stablenn", "peer"


@dataclass
class Series:
    label: str
    role: str
    ulp: np.ndarray  #: error at each grid point (max over components for vectors)
    nonfinite: np.ndarray  #: NaN or infinity where the exact value is finite
    error: str = ""  #: the exception text if the implementation raised
    worst: int = -1  #: grid index of the largest error
    bad: list[tuple[float, float]] = field(default_factory=list)  #: where it exceeds the budget

    @property
    def max_ulp(self) -> float:
        return float(np.max(self.ulp)) if self.ulp.size else 0.0


@dataclass
class Panel:
    dtype: str
    x: np.ndarray
    series: list[Series]
    budget: float
    bad: list[tuple[float, float]] = field(default_factory=list)  #: of the first series


@dataclass
class Sweep:
    key: str
    title: str
    xlabel: str
    panels: list[Panel]
    xscale: str = "linear"
    note: str = ""  #: where the implementations came from, shown under the table


def bad_intervals(x: np.ndarray, bad: np.ndarray, *, bridge: int = 0) -> list[tuple[float, float]]:
    """Runs of consecutive grid points where `bad` holds, as ``(first x, last x)``.

    Runs separated by at most `bridge` good grid points are joined into one interval.
    """
    x = np.asarray(x, dtype=np.float64)
    bad = np.asarray(bad, dtype=bool).copy()
    if bridge > 0:
        idx = np.flatnonzero(bad)
        for a, b in zip(idx[:-1], idx[1:]):
            if 1 < b - a <= bridge + 1:
                bad[a:b] = True
    out = []
    start = None
    for i, b in enumerate(bad):
        if b and start is None:
            start = i
        elif not b and start is not None:
            out.append((float(x[start]), float(x[i - 1])))
            start = None
    if start is not None:
        out.append((float(x[start]), float(x[-1])))
    return out


def format_intervals(intervals: Sequence[tuple[float, float]], *, limit: int = 6) -> str:
    """``[-745.1, -709.8], [36.7, 800]`` (at most `limit` intervals, then a count)."""
    if not intervals:
        return "nowhere on the grid"
    parts = [f"[{a:.4g}, {b:.4g}]" if a != b else f"{{{a:.4g}}}" for a, b in intervals[:limit]]
    if len(intervals) > limit:
        parts.append(f"and {len(intervals) - limit} more")
    return ", ".join(parts)


def _storage(dtype: str) -> Any:
    from stablenn.audit._ulp import get_format

    return get_format(dtype).storage


def grid(lo: float, hi: float, n: int, dtype: str, *, kind: str = "linear") -> np.ndarray:
    """`n` points from `lo` to `hi` rounded to `dtype` (duplicates removed, sorted).

    ``kind="log"``: log-uniform from ``lo > 0`` to ``hi``; ``kind="symlog"``: the same
    magnitudes with both signs.
    """
    if kind == "linear":
        x = np.linspace(lo, hi, n)
    elif kind == "log":
        x = np.logspace(np.log10(lo), np.log10(hi), n)
    else:
        half = np.logspace(np.log10(lo), np.log10(hi), max(2, n // 2))
        x = np.concatenate([-half[::-1], half])
    with np.errstate(over="ignore"):
        x = x.astype(_storage(dtype))
    return np.unique(x[np.isfinite(x)])


def _measure(
    x: np.ndarray,
    exact: np.ndarray,
    impls: Sequence[Impl],
    dtype: str,
    run: Callable[[Impl], np.ndarray],
) -> list[Series]:
    from stablenn.audit._ulp import ulp_distance

    out = []
    finite = np.isfinite(exact.astype(np.float64))
    for impl in impls:
        try:
            got = np.asarray(run(impl))
        except Exception as exc:  # shown in the report as what went wrong, never hidden
            nan = np.full(x.shape[0], np.inf)
            out.append(Series(impl.label, impl.role, nan, np.ones(x.shape[0], bool), f"{type(exc).__name__}: {exc}"))
            continue
        got = got.astype(exact.dtype, copy=False)
        with np.errstate(all="ignore"):
            u = ulp_distance(got, exact, dtype)
            nonfinite = ~np.isfinite(got.astype(np.float64)) & finite
        if u.ndim > 1:  # vectors: the worst component of each
            u = u.reshape(u.shape[0], -1).max(axis=1)
            nonfinite = nonfinite.reshape(nonfinite.shape[0], -1).any(axis=1)
        u = u.astype(np.float64)
        worst = int(np.argmax(np.where(np.isnan(u), np.inf, u))) if u.size else -1
        out.append(Series(impl.label, impl.role, u, nonfinite, worst=worst))
    return out


def _panel(dtype: str, x: np.ndarray, series: list[Series], budget: float) -> Panel:
    for s in series:
        s.bad = bad_intervals(x, (s.ulp > budget) | s.nonfinite, bridge=BRIDGE)
    return Panel(dtype, x.astype(np.float64), series, budget, series[0].bad)


def elementwise_sweep(
    key: str,
    title: str,
    exact: Callable[[np.ndarray, str], np.ndarray],
    impls: Sequence[Impl],
    grids: dict[str, np.ndarray],
    budget: Callable[[str], float],
    *,
    xlabel: str = "x",
    xscale: str = "linear",
) -> Sweep:
    """Measure each implementation on each dtype's grid against `exact(x, dtype)`."""
    panels = []
    for dtype, x in grids.items():
        ref = exact(x, dtype)
        series = _measure(x, ref, impls, dtype, lambda impl: impl.fn(x, dtype))
        panels.append(_panel(dtype, x, series, budget(dtype)))
    return Sweep(key, title, xlabel, panels, xscale)


def vector_sweep(
    key: str,
    title: str,
    exact: Callable[[np.ndarray, str], np.ndarray],
    impls: Sequence[Impl],
    shifts: dict[str, np.ndarray],
    offsets: np.ndarray,
    budget: Callable[[str], float],
    *,
    xlabel: str = "shift c (the vector is c + offsets)",
) -> Sweep:
    """Vectors ``c + offsets`` for each shift ``c``; `exact` maps the (n, k) vectors to results."""
    panels = []
    for dtype, c in shifts.items():
        st = _storage(dtype)
        with np.errstate(over="ignore"):
            v = (c.astype(np.float64)[:, None] + np.asarray(offsets, dtype=np.float64)[None, :]).astype(st)
        keep = np.isfinite(v).all(axis=1)
        v, cc = v[keep], c[keep]
        ref = exact(v, dtype)
        series = _measure(cc, ref, impls, dtype, lambda impl: impl.fn(v, dtype))
        panels.append(_panel(dtype, cc, series, budget(dtype)))
    return Sweep(key, title, xlabel, panels)


# ---------------------------------------------------------------- drawing

_COLORS = {"naive": ("#d1242f", "#e16f24", "#8250df"), "peer": ("#8250df", "#bf8700"), "stablenn": ("#0969da", "#1a7f37")}


def plot_sweep(sweep: Sweep) -> Any:
    """One panel per dtype: error in ULP (symmetric log scale) against the input."""
    from ._svg import new_figure

    fig, axes = new_figure(4.6 * len(sweep.panels), 2.9, cols=len(sweep.panels))
    for ax, panel in zip(axes[0], sweep.panels):
        ax.margins(x=0)
        # a log axis over 600 decades overflows matplotlib's tick arithmetic: plot log10(x)
        logx = sweep.xscale == "log"
        xs = np.log10(panel.x) if logx else panel.x
        used: dict[str, int] = {}
        for s in panel.series:
            palette = _COLORS.get(s.role, _COLORS["naive"])
            color = palette[used.get(s.role, 0) % len(palette)]
            used[s.role] = used.get(s.role, 0) + 1
            y = np.where(s.nonfinite | ~np.isfinite(s.ulp), NONFINITE_LEVEL, np.minimum(s.ulp, NONFINITE_LEVEL))
            width = 1.4 if s.role == "stablenn" else 1.0
            label = s.label if not s.error else f"{s.label} (raised: {s.error[:40]})"
            ax.plot(xs, y, color=color, lw=width, label=label, zorder=3 if s.role == "stablenn" else 2)
        for a, b in panel.bad:
            if logx:
                a, b = np.log10(a), np.log10(b)
            if a == b:
                ax.axvline(a, color="#d1242f", alpha=0.25, lw=2)
            else:
                ax.axvspan(a, b, color="#d1242f", alpha=0.12, lw=0)
        ax.axhline(panel.budget, color="k", ls="--", lw=0.8, label=f"budget {panel.budget:g} ULP")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(0, NONFINITE_LEVEL * 8)
        ticks = [0, 1, 1e3, 1e6, 1e9, 1e12, 1e15, NONFINITE_LEVEL]
        ax.set_yticks(ticks, ["0", "1", "1e3", "1e6", "1e9", "1e12", "1e15", "NaN/inf"])
        ax.set_title(f"{panel.dtype}", fontsize=9)
        ax.set_xlabel(f"log₁₀ {sweep.xlabel}" if logx else sweep.xlabel)
        ax.set_ylabel("error (ULP)")
        ax.legend(fontsize=7, loc="best")
    return fig
