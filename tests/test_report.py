"""The report: rendering, escaping, the measuring pipeline against mpmath, and a quick build.

Truth comes from mpmath: the exact values the report measures against are checked here
against mpmath computed independently, and the floating-point results of the naive
formulas against the same formulas computed with Python floats.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import mpmath
import numpy as np
import pytest

from stablenn.cli import main
from stablenn.report import _doc, _evidence, _progress, _sweeps
from stablenn.report._doc import Document, Heading, Math, Notice, Paragraph, Table, Text, to_html, to_markdown

# ---------------------------------------------------------------- escaping and rendering

HOSTILE = "<script>alert('x')</script> & | *bold* _u_ $$\\frac{a}{b}$$ [link](http://example.com) `code`"


def test_text_is_escaped_in_html_and_markdown():
    doc = Document(HOSTILE, [
        Heading(2, HOSTILE, "h"),
        Paragraph([HOSTILE, Text(HOSTILE, "strong"), Text(HOSTILE, "code")]),
        Table([HOSTILE], [[HOSTILE], [Text(HOSTILE, "bad")]], caption=HOSTILE),
        Notice("missing", HOSTILE),
    ])
    page = to_html(doc)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="http' not in page
    md = to_markdown(doc, figures={})
    # outside code spans (shown verbatim by Markdown, never as HTML) nothing is markup
    outside = re.sub(r"(`+) .*? \1|(`+)[^`]*?\2", "", md)
    assert "<script>" not in outside and "\\<script\\>" in md
    # every table row keeps its column count: a | inside a cell is escaped
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows and all(len(re.findall(r"(?<!\\)\|", r)) == 2 for r in rows)
    assert "\\$\\$" in md and "](http" not in outside


def test_math_that_is_not_xml_is_shown_as_escaped_text():
    m = Math("<mi>x</mi><script>", "x < 1")
    assert m.mathml == "<mtext>x &lt; 1</mtext>"
    assert "<script>" not in to_html(Document("t", [Paragraph([m])]))


def test_links_only_inside_the_page():
    with pytest.raises(ValueError, match="only links inside the page"):
        to_html(Document("t", [Paragraph([Text("x", href="https://example.com/")])]))


def test_escape_markdown_leaves_no_markup():
    assert _doc.escape_markdown("a*b_c|d<e>`f`$g$\n#h") == "a\\*b\\_c\\|d\\<e\\>\\`f\\`\\$g\\$ \\#h"


# ---------------------------------------------------------------- SVG


def test_svg_is_inline_ready_with_prefixed_ids():
    from stablenn.report._svg import figure_svg, new_figure, plot_style

    with plot_style():
        fig, axes = new_figure(4, 2, cols=2)
        for ax in axes[0]:
            ax.plot([0, 1], [1, 0], label="a $x$")
            ax.legend()
        svg = figure_svg(fig, "fig-a")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg and "<!--" not in svg and "<metadata" not in svg
    root = ET.fromstring(svg)  # well-formed
    ids = {el.get("id") for el in root.iter() if el.get("id")}
    assert ids and all(i.startswith("fig-a-") for i in ids)
    refs = set(re.findall(r'href="#([^"]+)"', svg)) | set(re.findall(r"url\(#([^)]+)\)", svg))
    assert refs <= ids
    # nothing to fetch: the only URLs are XML namespace names
    urls = set(re.findall(r"https?://[^\s\"')]+", svg))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    with pytest.raises(ValueError):
        figure_svg(fig, "bad prefix")


# ---------------------------------------------------------------- intervals and progress


def test_bad_intervals_runs_and_bridges():
    x = np.arange(10.0)
    bad = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 1], dtype=bool)
    assert _sweeps.bad_intervals(x, bad) == [(1.0, 2.0), (5.0, 5.0), (9.0, 9.0)]
    assert _sweeps.bad_intervals(x, bad, bridge=2) == [(1.0, 5.0), (9.0, 9.0)]
    assert _sweeps.bad_intervals(x, np.zeros(10, bool)) == []
    assert _sweeps.format_intervals([]) == "nowhere on the grid"


def test_progress_plain_and_tty():
    plain = io.StringIO()
    with _progress.Progress(3, stream=plain) as p:
        p.step("a")
        p.step("b <c>")
    assert plain.getvalue() == "[1/3] a\n[2/3] b <c>\n"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    with _progress.Progress(2, stream=tty) as p:
        p.step("first")
        p.step("second")
    out = tty.getvalue()
    assert out.count("\r") == 3 and out.rstrip(" \n").endswith("done") and "\n" not in out[:-1]
    silent = io.StringIO()
    _progress.Progress(1, stream=silent, enabled=False).step("x")
    assert silent.getvalue() == ""


# ---------------------------------------------------------------- the measurements against mpmath


def _ordinal(v: float) -> int:
    (bits,) = struct.unpack("<q", struct.pack("<d", v))
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _ulps(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.inf if math.isnan(a) != math.isnan(b) else 0.0
    return float(abs(_ordinal(a) - _ordinal(b)))


def test_softplus_sweep_exact_values_and_naive_errors_match_mpmath():
    sizes = _evidence.Sizes.quick(sweep_points=41)
    sweep = _evidence.sweep("stable-softplus", sizes)
    assert isinstance(sweep, _sweeps.Sweep), sweep
    panel = next(p for p in sweep.panels if p.dtype == "float64")
    naive = panel.series[0]
    mpmath.mp.prec = 300
    for i, x in enumerate(panel.x):
        exact = float(mpmath.log1p(mpmath.exp(mpmath.mpf(float(x)))))  # softplus at 300 bits
        with np.errstate(over="ignore"):
            got = float(np.log(1.0 + np.exp(x)))  # the naive formula in Python's float64
        assert naive.ulp[i] == _ulps(got, exact), x
    # log(1 + e^x) rounds to 0 from x < -37 while the exact value e^x is still above the
    # smallest subnormal (down to x = -745.13, mpmath: log(2**-1074)), and e^x overflows
    # above log(DBL_MAX) = 709.78 (mpmath: log(2**1024)): every grid point there is shaded
    inside = [x for x in panel.x if -745 < x < -37 or x > 709.79]
    assert inside and all(any(a <= x <= b for a, b in panel.bad) for x in inside)
    assert naive.nonfinite[panel.x > 709.79].all()


def test_bce_forms_pipeline_matches_mpmath():
    """The BCE comparison: exact loss by mpmath, Problem 6's form by Python floats."""
    sizes = _evidence.Sizes.quick(bce_pairs=300)
    forms = _evidence.bce_forms(sizes)
    assert isinstance(forms, _evidence.BceForms), forms
    stats = forms.stats["float64"]
    assert [s.label.split(":")[0] for s in stats] == [
        "stablenn.binary_cross_entropy_with_logits", "Problem 6's form", "Problem 6's form with log1p"]
    # the worst case reported for Problem 6's form, recomputed independently
    x, y, got, exact = stats[1].worst
    mpmath.mp.prec = 300
    X, Y = mpmath.mpf(x), mpmath.mpf(y)
    # -(y log sigma(x) + (1 - y) log(1 - sigma(x))) = y softplus(-x) + (1 - y) softplus(x)
    true = Y * mpmath.log1p(mpmath.exp(-X)) + (1 - Y) * mpmath.log1p(mpmath.exp(X))
    assert exact == float(true)
    with np.errstate(over="ignore"):
        mine = float(np.maximum(x, 0.0) - x * y + np.log(1.0 + np.exp(-abs(x))))
    assert got == mine or (math.isnan(got) and math.isnan(mine))
    assert stats[1].max_ulp == _ulps(got, exact)


def test_missing_never_faked(monkeypatch, tmp_path):
    """A feature that raises becomes a Missing naming the error, never a number."""
    import stablenn.networks

    def broken(**kw):
        raise RuntimeError("demo exploded")

    monkeypatch.setattr(stablenn.networks, "nonlinearity_demo", broken)
    result = _evidence.network_demo(_evidence.Sizes.quick())
    assert isinstance(result, _evidence.Missing)
    assert result.feature == "networks" and "RuntimeError: demo exploded" in result.reason
    sweep = _evidence.sweep("no-such-sweep", _evidence.Sizes.quick())
    assert isinstance(sweep, _evidence.Missing) and "KeyError" in sweep.reason


# ---------------------------------------------------------------- the command


def test_cli_refuses_bad_input(tmp_path, capsys):
    assert main(["report", "--quick", "--samples", "0", "--out", str(tmp_path)]) == 2
    assert "`--samples` must be a positive integer; got 0" in capsys.readouterr().err
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["report", "--quick", "--out", str(afile)]) == 2
    assert "`--out` must be a directory" in capsys.readouterr().err


def test_missing_piece_is_said_in_both_files():
    """A piece a feature cannot provide is named where it belongs and in the summary, escaped."""
    from stablenn.report._content import ReportData, build_document

    gone = _evidence.Missing("gradients", "peak memory <of a step>", "benchmarks/x.py | not here")
    data = ReportData(_evidence.Sizes.quick(), "quick", {"CPU": "test"}, {"numpy": "x"}, memory=gone)
    doc = build_document(data)
    html = to_html(doc)
    md = to_markdown(doc, figures={})
    assert html.count("peak memory &lt;of a step&gt;") == 2  # at its place, and in the summary's list
    assert "benchmarks/x.py | not here" in html
    assert md.count("peak memory \\<of a step\\>") == 2 and "benchmarks/x.py \\| not here" in md
    assert data.missing() == [gone]
    # no proofs were given: the page says so instead of showing a verdict
    assert "0 of 0 verified" in html and "(the proof logsumexp-shift is not available)" in html
