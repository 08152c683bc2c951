"""Plots of an audit: error (ULP, log scale) against the input, one line per implementation.

As in Herbie, the horizontal axis is the input's bit pattern (its ordinal: every float is
one step), labelled with the input values, so every binade gets the same room: overflow
near 1e38 and underflow near 1e-38 are both visible.  Each line is the largest error
in each of 200 slices of the axis (the samples themselves are too many to draw); the
bad intervals found by the audit are shaded in the line's colour (darker where all
digits are lost).  Infinite errors (NaN results) are drawn at the top edge.

For vector functions and losses the horizontal axis is the exact result instead (their
input is a vector); for formulas of several scalar variables there is one panel per
variable.  The file's suffix chooses the format: ``.png`` or ``.svg``.  Text that comes
from the user (a formula) is escaped so matplotlib draws it literally.

>>> escape_text("cost in $ and 50% \\\\ x")
'cost in \\\\$ and 50% \\\\ x'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._engine import Audit
from ._ulp import from_ordinal, get_format, ordinal

__all__ = ["escape_text", "plot_audit"]

_BINS = 200
_COLORS = ("#1b7837", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#1f78b4", "#a6761d")


def escape_text(text: str) -> str:
    """`text` for a matplotlib label: ``$`` escaped so no math mode starts, one line."""
    return str(text).replace("$", r"\$").replace("\n", " ")


def _binned(o: np.ndarray, u: np.ndarray, lo: int, hi: int, top: float) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(lo, hi, _BINS + 1)
    idx = np.clip(np.searchsorted(edges, o, side="right") - 1, 0, _BINS - 1)
    vals = np.where(np.isinf(u) | np.isnan(u), top, u)
    best = np.full(_BINS, np.nan)
    np.fmax.at(best, idx, vals)
    centres = (edges[:-1] + edges[1:]) / 2
    keep = ~np.isnan(best)
    return centres[keep], best[keep]


def _ticks(lo: int, hi: int, fmt: Any, most: int = 9) -> list[float]:
    """Ordinals of round values (0 and +-10**k) spread evenly over ``[lo, hi]``; plain
    ordinal ticks when the axis spans less than a few decades."""
    cands = [0.0]
    top = int(math.floor(math.log10(fmt.max)))
    bottom = int(math.floor(math.log10(fmt.smallest_subnormal)))
    for k in range(bottom, top + 1):
        cands += [10.0**k, -(10.0**k)]
    with np.errstate(over="ignore"):
        ords = sorted({int(ordinal(np.array([v]).astype(fmt.storage), fmt)[0]) for v in cands})
    inside = [o for o in ords if lo <= o <= hi]
    if len(inside) < 4:
        return [float(v) for v in np.linspace(lo, hi, 6)]
    if len(inside) > most:
        pick = np.linspace(0, len(inside) - 1, most).round().astype(int)
        inside = [inside[i] for i in sorted(set(pick.tolist()))]
    return [float(o) for o in inside]


def _panel(ax: Any, audit: Audit, key: str, fmt: Any, title_x: str) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    top = 2.0 ** (fmt.width + 2)
    all_o = []
    for run in audit.runs:
        if key in run.points and run.points[key].size:
            v = run.points[key]
            v = v[np.isfinite(v)]
            if v.size:
                all_o.append(ordinal(v.astype(fmt.storage), fmt))
    if not all_o:
        ax.text(0.5, 0.5, "no finite inputs", transform=ax.transAxes, ha="center")
        return
    cat = np.concatenate(all_o)
    lo, hi = int(cat.min()), int(cat.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    for k, run in enumerate(audit.runs):
        if key not in run.points or not run.points[key].size:
            continue
        color = _COLORS[k % len(_COLORS)]
        v = run.points[key]
        u = run.points["ulp"]
        finite = np.isfinite(v)
        o = ordinal(v[finite].astype(fmt.storage), fmt)
        cx, cy = _binned(o, u[finite], lo, hi, top)
        ax.step(cx, cy, where="mid", color=color, linewidth=1.2, label=escape_text(f"{run.name}: {run.label}"))
        if key in ("x",) or (audit.kind == "formula" and key in audit.variables and len(audit.variables) == 1):
            for iv in run.intervals:
                a, b = (int(q) for q in ordinal(np.array([iv.lo, iv.hi]).astype(fmt.storage), fmt))
                ax.axvspan(a - 0.5, b + 0.5, color=color, alpha=0.22 if iv.level == "lost" else 0.08, linewidth=0)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0, top * 2)
    decades = int(math.log10(top)) + 1
    step = max(1, math.ceil(decades / 7))
    ax.yaxis.set_major_locator(FixedLocator([0.0, 1.0] + [10.0**k for k in range(step, decades + 1, step)]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.axhline(audit.threshold, color="grey", linewidth=0.6, linestyle=":")
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator(_ticks(lo, hi, fmt)))

    def label(o: float, _pos: Any) -> str:
        q = int(round(min(max(o, -fmt.max_ordinal), fmt.max_ordinal)))
        val = float(from_ordinal([q], fmt)[0])
        if val == 0:
            return "0"
        return f"{val:.2g}" if math.isfinite(val) else ("inf" if val > 0 else "-inf")

    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.set_xlabel(escape_text(title_x))
    ax.set_ylabel("error (ULP)")
    ax.grid(True, linewidth=0.3, alpha=0.5)


def plot_audit(audit: Audit, path: str) -> None:
    """Write the plot of `audit` to `path` (``.png`` or ``.svg``).

    Raises OSError when the file cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fmt = get_format(audit.dtype)
    if audit.kind == "formula" and audit.variables and not audit.vector_variables:
        keys = list(audit.variables)
        xlabels = [f"{v} (spaced by bit pattern)" for v in keys]
    elif any("x" in run.points for run in audit.runs):
        keys, xlabels = ["x"], ["x (spaced by bit pattern)"]
    else:
        keys, xlabels = ["exact"], ["exact result (spaced by bit pattern)"]
    fig = Figure(figsize=(9, 3.6 * len(keys) + 0.8))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(len(keys), 1, i + 1) for i in range(len(keys))]
    for ax, key, xl in zip(axes, keys, xlabels, strict=True):
        _panel(ax, audit, key, fmt, xl)
    axes[0].set_title(escape_text(f"{audit.subject} in {audit.dtype}: error against exact arithmetic"), fontsize=10)
    axes[0].legend(fontsize=7, loc="upper left", framealpha=0.85)
    fig.tight_layout()
    fmt_name = "svg" if path.lower().endswith(".svg") else "png"
    fig.savefig(path, format=fmt_name, dpi=120)
