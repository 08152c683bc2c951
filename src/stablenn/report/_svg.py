"""Matplotlib figures as inline SVG: no fonts to fetch, no clashing ids, nothing external.

Text is drawn as paths (matplotlib's ``svg.fonttype = "path"``), so the page needs no
font; the XML prologue, the metadata block and comments are dropped; every ``id`` gets a
prefix unique to the figure (several figures define the same glyph ids), and references to
it (``href="#…"``, ``url(#…)``) follow.
"""

from __future__ import annotations

import io
import re
from typing import Any

__all__ = ["figure_svg", "inline_svg", "new_figure", "plot_style"]

_RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "stablenn-report",  # the same figure gives the same file
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def plot_style() -> Any:
    """A context manager: the report's matplotlib settings, for drawing and saving."""
    import matplotlib

    return matplotlib.rc_context(_RC)


def new_figure(width: float, height: float, *, rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
    """A ``Figure`` (no ``pyplot`` state) and its axes array, shape (rows, cols).

    Call it, draw and save inside ``with plot_style():`` so that the settings apply.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def figure_svg(fig: Any, prefix: str) -> str:
    """`fig` as an ``<svg>`` element for an HTML page, its ids prefixed with `prefix`."""
    import matplotlib

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", prefix):
        raise ValueError(f"`prefix` must be a plain identifier; got {prefix!r}")
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return inline_svg(buf.getvalue(), prefix)


def inline_svg(text: str, prefix: str) -> str:
    """An SVG document's text as an ``<svg>`` element for a page, its ids prefixed."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", prefix):
        raise ValueError(f"`prefix` must be a plain identifier; got {prefix!r}")
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    ids = set(re.findall(r'\bid="([^"]+)"', text))

    def rename(name: str) -> str:
        return f"{prefix}-{name}" if name in ids else name

    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{rename(m.group(1))}"', text)
    text = re.sub(r'(xlink:href|href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{rename(m.group(2))}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{rename(m.group(1))})", text)
    start = text.find("<svg")
    text = text[start:].strip()
    # the page scales the figure: keep the viewBox, let CSS choose the width
    text = re.sub(r'^<svg([^>]*?)\swidth="[^"]*"\sheight="[^"]*"', r"<svg\1", text, count=1)
    text = text.replace("<svg", '<svg role="img"', 1)
    return text
