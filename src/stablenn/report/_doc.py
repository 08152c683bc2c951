"""A small document model, rendered twice: as one self-contained HTML page and as Markdown.

The report is built once as a list of blocks (headings, paragraphs, formulas, tables,
figures, proofs, notices); `to_html` and `to_markdown` render the same blocks, so the two
files say the same thing.  Every piece of text that reaches either file goes through
`escape_html` or `escape_markdown` here; MathML comes only from `stablenn.proofs.mathml`
and is checked to be well-formed XML before it is used (`Math`), and SVG only from
`_svg.figure_svg`.

>>> doc = Document("t", [Heading(2, "a < b", "x"), Paragraph(["5 * 3 ", Text("bold", "strong")])])
>>> print(to_markdown(doc, figures={}).splitlines()[2])
## a \\< b <a id="x"></a>
>>> "<h2 id=\\"x\\">a &lt; b</h2>" in to_html(doc)
True
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Document",
    "Figure",
    "Heading",
    "ListBlock",
    "Math",
    "MathBlock",
    "Notice",
    "Paragraph",
    "ProofView",
    "Table",
    "Text",
    "escape_html",
    "escape_markdown",
    "math_from_sympy",
    "to_html",
    "to_markdown",
]


# ---------------------------------------------------------------- escaping


def escape_html(text: Any) -> str:
    """Text for an HTML element or attribute: ``& < > " '`` escaped."""
    return html.escape(str(text), quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~$])")


def escape_markdown(text: Any) -> str:
    r"""Text for Markdown: every character Markdown could read as markup is escaped.

    ASCII punctuation is backslash-escaped (CommonMark allows that for any of it), ``&``
    becomes ``&amp;`` so that no entity is formed, and line breaks become spaces.

    >>> escape_markdown("a|b *c* <script> & $x$")
    'a\\|b \\*c\\* \\<script\\> &amp; \\$x\\$'
    """
    text = str(text).replace("&", "&amp;").replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_code(text: str) -> str:
    """An inline code span holding `text` verbatim (in a table, ``|`` is escaped)."""
    text = str(text).replace("\n", " ")
    ticks = max((len(m) for m in re.findall(r"`+", text)), default=0) + 1
    fence = "`" * ticks
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


# ---------------------------------------------------------------- inline content


@dataclass(frozen=True)
class Text:
    """A run of text with a style: ``""``, ``"strong"``, ``"em"``, ``"code"``, ``"ok"``, ``"bad"``, ``"muted"``."""

    text: str
    style: str = ""
    href: str = ""  #: an anchor inside the page (``#proof-bce-logits``); nothing else is linked


@dataclass(frozen=True)
class Math:
    """A formula: presentation MathML (the inside of ``<math>``) and its Unicode text.

    The MathML is parsed as XML here; if it is not well-formed the formula is shown as its
    Unicode text inside ``<mtext>`` (escaped), so nothing unchecked reaches the page.
    """

    mathml: str
    text: str

    def __post_init__(self) -> None:
        try:
            ET.fromstring(f'<math xmlns="http://www.w3.org/1998/Math/MathML">{self.mathml}</math>')
        except ET.ParseError:
            object.__setattr__(self, "mathml", f"<mtext>{escape_html(self.text)}</mtext>")


Inline = str | Text | Math
Rich = Sequence[Inline] | str


def math_from_sympy(expr: Any) -> Math:
    """A `Math` for a SymPy expression, through stablenn's own MathML and Unicode printers."""
    from stablenn.proofs import mathml, unicode_line

    return Math(mathml(expr), unicode_line(expr))


def _rich(value: Rich | Text | Math) -> list[Inline]:
    return [value] if isinstance(value, (str, Text, Math)) else list(value)


def _inline_html(item: Inline) -> str:
    if isinstance(item, str):
        return escape_html(item)
    if isinstance(item, Math):
        return f'<math display="inline">{item.mathml}</math>'
    body = escape_html(item.text)
    if item.style == "strong":
        body = f"<strong>{body}</strong>"
    elif item.style == "em":
        body = f"<em>{body}</em>"
    elif item.style == "code":
        body = f"<code>{body}</code>"
    elif item.style in ("ok", "bad", "muted", "warn"):
        body = f'<span class="{item.style}">{body}</span>'
    if item.href:
        if not re.fullmatch(r"#[A-Za-z0-9_.:-]+", item.href):
            raise ValueError(f"only links inside the page are allowed; got {item.href!r}")
        body = f'<a href="{escape_html(item.href)}">{body}</a>'
    return body


def _inline_md(item: Inline, *, in_table: bool = False) -> str:
    if isinstance(item, str):
        return escape_markdown(item)
    if isinstance(item, Math):
        return _md_code(item.text)
    if item.style == "code":
        return _md_code(item.text)
    body = escape_markdown(item.text)
    if item.style == "strong" or item.style == "bad":
        body = f"**{body}**"
    elif item.style == "em":
        body = f"*{body}*"
    if item.href:
        body = f"[{body}]({item.href})"
    return body


def rich_html(value: Rich) -> str:
    return "".join(_inline_html(i) for i in _rich(value))


def rich_md(value: Rich, *, in_table: bool = False) -> str:
    return "".join(_inline_md(i, in_table=in_table) for i in _rich(value))


def plain_text(value: Rich) -> str:
    """The text of rich content, formulas as their Unicode text."""
    return "".join(i if isinstance(i, str) else i.text for i in _rich(value))


# ---------------------------------------------------------------- blocks


@dataclass
class Heading:
    level: int
    text: Rich
    anchor: str = ""


@dataclass
class Paragraph:
    content: Rich
    style: str = ""  #: "", "small", "lead"


@dataclass
class MathBlock:
    math: Math


@dataclass
class ListBlock:
    items: list[Rich]


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Rich]]
    caption: Rich = ""
    numeric: Sequence[int] = ()  #: columns to right-align


@dataclass
class Figure:
    """An inline SVG with a caption; `key` names it (``fig-p4-logsumexp``) in both files."""

    key: str
    svg: str
    caption: Rich
    alt: str


@dataclass
class Notice:
    """A boxed remark: ``"missing"`` (a feature not available), ``"fail"``, ``"note"``."""

    kind: str
    content: Rich


@dataclass
class ProofView:
    """A proof with its verification result (`stablenn.proofs.Proof`, `ProofResult`)."""

    proof: Any
    result: Any
    note: Rich = ""
    expect_refused: bool = False  #: the sheet's attempts: refused lines are the expected outcome


@dataclass
class Document:
    title: str
    blocks: list[Any] = field(default_factory=list)

    def add(self, *blocks: Any) -> None:
        self.blocks.extend(blocks)


# ---------------------------------------------------------------- HTML

_CSS = """
:root { --ok: #1a7f37; --bad: #c62828; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0 auto; max-width: 1180px; padding: 1.5rem 2rem 4rem; line-height: 1.45; color: #1f2328; }
h1 { font-size: 1.9rem; margin-bottom: .2rem; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: .2rem; margin-top: 2.6rem; }
h3 { margin-top: 1.8rem; }
h4 { margin: 1.2rem 0 .3rem; }
p.small, .small { font-size: .9rem; color: var(--muted); }
p.lead { font-size: 1.05rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .25rem .55rem; vertical-align: top; text-align: left; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-size: .9rem; color: var(--muted); padding-bottom: .2rem; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.muted { color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em;
       background: #f6f8fa; padding: 0 .2em; border-radius: 3px; }
math[display="block"] { margin: .4rem 0; }
.proof td math, .proof .givens math { math-style: normal; font-size: 1.05em; }
figure { margin: 1rem 0 1.4rem; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: .9rem; color: var(--muted); margin-top: .3rem; }
.notice { border-left: 4px solid var(--line); background: #f6f8fa; padding: .5rem .8rem; margin: .8rem 0; }
.notice.missing { border-color: var(--warn); background: #fff8c5; }
.notice.fail { border-color: var(--bad); background: #ffebe9; }
.notice.note { border-color: #0969da; background: #ddf4ff; }
.notice .label { font-weight: 700; margin-right: .4rem; }
.proof { border: 1px solid var(--line); border-radius: 6px; padding: .2rem 1rem .6rem; margin: 1rem 0; }
.proof h4 .verdict { font-size: .85rem; margin-left: .6rem; }
.proof table.steps { width: 100%; }
.proof table.steps td.mark { width: 1.6rem; text-align: center; }
.proof table.steps td.rel { width: 1.4rem; text-align: center; }
.proof table.steps td.rule { width: 34%; }
.proof table.steps td.check { width: 22%; font-size: .82rem; color: var(--muted); }
.proof .part { font-weight: 600; margin: .6rem 0 .1rem; }
.proof .givens { font-size: .9rem; margin: .1rem 0 .3rem 1rem; }
.proof .reason { color: var(--bad); font-size: .85rem; }
nav.toc ul { columns: 2; }
"""


def _table_html(t: Table) -> str:
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{rich_html(t.caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{escape_html(c)}</th>" for c in t.columns) + "</tr></thead><tbody>")
    for row in t.rows:
        cells = []
        for j, cell in enumerate(row):
            cls = ' class="num"' if j in t.numeric else ""
            cells.append(f"<td{cls}>{rich_html(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


_NOTICE_LABEL = {"missing": "Missing:", "fail": "Failed:", "note": "Note:"}


def _check_text(verdict: Any) -> str:
    if verdict is None:
        return ""
    parts = []
    parts.append(f"SymPy: {verdict.method or 'proved'}" if verdict.symbolic else "SymPy: not shown equal")
    parts.append("mpmath: agrees" if verdict.numeric else "mpmath: disagrees")
    return "; ".join(parts)


def _proof_mark(verdict: Any, expect_refused: bool) -> Text:
    if verdict is None:
        return Text("·", "muted")
    if verdict.ok:
        return Text("✓", "ok")
    return Text("✗", "warn" if expect_refused else "bad")


def proof_verdict(view: ProofView) -> Text:
    """The one-word verdict shown beside a proof's title."""
    r = view.result
    if r is None:
        return Text("not checked", "warn")
    n = len(r.steps)
    if view.expect_refused:
        bad = len(r.failures)
        return Text(f"{bad} of {n} lines refused, as they must be", "ok") if bad else Text("no line refused", "bad")
    if r.ok:
        return Text(f"verified: {n} of {n} steps checked by SymPy and mpmath", "ok")
    return Text(f"NOT verified: {len(r.failures)} of {n} steps failed", "bad")


def _proof_html(view: ProofView) -> str:
    p, r = view.proof, view.result
    verdicts = {(v.part, v.index): v for v in r.steps} if r is not None else {}
    out = [f'<div class="proof" id="proof-{escape_html(p.name)}">']
    out.append(
        f"<h4>{escape_html(p.name)}: {escape_html(p.title)}"
        f'<span class="verdict">{_inline_html(proof_verdict(view))}</span></h4>'
    )
    st = Math(p.statement_mathml(), p.statement_text())
    out.append(f'<math display="block">{st.mathml}</math>')
    if p.claim:
        out.append(f'<p class="small">{escape_html(p.claim)}</p>')
    if p.assumptions:
        where = "; ".join(a.describe() for a in p.assumptions)
        out.append(f'<p class="small">where {escape_html(where)}</p>')
    if view.note:
        out.append(f"<p>{rich_html(view.note)}</p>")
    lines = p.lines()
    for k, part in enumerate(p.parts):
        if part.title:
            out.append(f'<p class="part">{escape_html(part.title)}</p>')
        if part.givens:
            items = []
            for g in part.givens:
                eq = Math(_mathml(g.expr), g.text())
                items.append(f"{escape_html(g.kind)}: <math display=\"inline\">{eq.mathml}</math>")
            out.append('<div class="givens">' + "<br/>".join(items) + "</div>")
        out.append('<table class="steps"><tbody>')
        for k_, i, rel, step in lines:
            if k_ != k:
                continue
            v = verdicts.get((k_, i))
            m = Math(step.mathml(), step.text())
            reason = f'<div class="reason">{escape_html(v.reason)}</div>' if v is not None and not v.ok else ""
            out.append(
                f'<tr><td class="mark">{_inline_html(_proof_mark(v, view.expect_refused))}</td>'
                f'<td class="rel">{escape_html(rel)}</td>'
                f'<td><math display="inline">{m.mathml}</math>{reason}</td>'
                f'<td class="rule">{escape_html(step.rule)}</td>'
                f'<td class="check">{escape_html(_check_text(v))}</td></tr>'
            )
        out.append("</tbody></table>")
    if r is not None:
        out.append(f'<p class="small">{escape_html(r.summary(short=True))}</p>')
    out.append("</div>")
    return "\n".join(out)


def _mathml(expr: Any) -> str:
    from stablenn.proofs import mathml

    return mathml(expr)


def _block_html(b: Any) -> str:
    if isinstance(b, Heading):
        anchor = f' id="{escape_html(b.anchor)}"' if b.anchor else ""
        return f"<h{b.level}{anchor}>{rich_html(b.text)}</h{b.level}>"
    if isinstance(b, Paragraph):
        cls = f' class="{escape_html(b.style)}"' if b.style else ""
        return f"<p{cls}>{rich_html(b.content)}</p>"
    if isinstance(b, MathBlock):
        return f'<math display="block">{b.math.mathml}</math>'
    if isinstance(b, ListBlock):
        return "<ul>" + "".join(f"<li>{rich_html(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        return _table_html(b)
    if isinstance(b, Figure):
        return (
            f'<figure id="{escape_html(b.key)}" class="plot">{b.svg}'
            f"<figcaption>{rich_html(b.caption)}</figcaption></figure>"
        )
    if isinstance(b, Notice):
        label = _NOTICE_LABEL.get(b.kind, "")
        return (
            f'<div class="notice {escape_html(b.kind)}"><span class="label">{escape_html(label)}</span>'
            f"{rich_html(b.content)}</div>"
        )
    if isinstance(b, ProofView):
        return _proof_html(b)
    raise TypeError(f"unknown block {type(b).__name__}")


def to_html(doc: Document) -> str:
    """The whole page: no scripts, no external resources, a policy that forbids fetching any."""
    body = "\n".join(_block_html(b) for b in doc.blocks)
    # The policy refuses every fetch: a stray external reference shows up as a console error.
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8"/>\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}"/>\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>\n'
        f"<title>{escape_html(doc.title)}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------- Markdown


def _table_md(t: Table) -> str:
    out = []
    if t.caption:
        out.append(rich_md(t.caption) + "\n")
    out.append("| " + " | ".join(escape_markdown(c) for c in t.columns) + " |")
    out.append("|" + "|".join(" ---: " if j in t.numeric else " --- " for j in range(len(t.columns))) + "|")
    for row in t.rows:
        out.append("| " + " | ".join(rich_md(c, in_table=True) or " " for c in row) + " |")
    return "\n".join(out)


def _proof_md(view: ProofView) -> str:
    p, r = view.proof, view.result
    verdicts = {(v.part, v.index): v for v in r.steps} if r is not None else {}
    out = [f"#### {escape_markdown(p.name)}: {escape_markdown(p.title)}", ""]
    out.append(rich_md([proof_verdict(view)]))
    out.append("")
    out.append("Claim: " + _md_code(p.statement_text()) + (f" ({escape_markdown(p.claim)})" if p.claim else ""))
    out.append("")
    if p.assumptions:
        out.append("Where " + escape_markdown("; ".join(a.describe() for a in p.assumptions)))
        out.append("")
    if view.note:
        out += [rich_md(view.note), ""]
    lines = p.lines()
    for k, part in enumerate(p.parts):
        if part.title:
            out += [f"*{escape_markdown(part.title)}*", ""]
        for g in part.givens:
            out += ["- " + _md_code(g.text())]
        if part.givens:
            out.append("")
        out.append("| | step | rule | check |")
        out.append("| --- | --- | --- | --- |")
        for k_, i, rel, step in lines:
            if k_ != k:
                continue
            v = verdicts.get((k_, i))
            mark = rich_md([_proof_mark(v, view.expect_refused)])
            body = _md_code(f"{rel} {step.text()}".strip())
            check = escape_markdown(_check_text(v))
            if v is not None and not v.ok:
                check += " — " + escape_markdown(v.reason)
            out.append(f"| {mark} | {body} | {escape_markdown(step.rule)} | {check} |")
        out.append("")
    if r is not None:
        out.append(escape_markdown(r.summary(short=True)))
    return "\n".join(out)


def _block_md(b: Any, figures: dict[str, str]) -> str:
    if isinstance(b, Heading):
        anchor = f' <a id="{escape_html(b.anchor)}"></a>' if b.anchor else ""
        return "#" * b.level + " " + rich_md(b.text) + anchor
    if isinstance(b, Paragraph):
        return rich_md(b.content)
    if isinstance(b, MathBlock):
        return "    " + b.math.text
    if isinstance(b, ListBlock):
        return "\n".join("- " + rich_md(i) for i in b.items)
    if isinstance(b, Table):
        return _table_md(b)
    if isinstance(b, Figure):
        path = figures.get(b.key, "")
        img = f"![{escape_markdown(b.alt)}]({path})" if path else f"*(figure {escape_markdown(b.key)})*"
        return f"{img}\n\n*{rich_md(b.caption)}*"
    if isinstance(b, Notice):
        label = _NOTICE_LABEL.get(b.kind, "")
        return f"> **{escape_markdown(label)}** {rich_md(b.content)}"
    if isinstance(b, ProofView):
        return _proof_md(b)
    raise TypeError(f"unknown block {type(b).__name__}")


def to_markdown(doc: Document, *, figures: dict[str, str]) -> str:
    """The Markdown twin; `figures` maps a figure's key to the relative path of its SVG file."""
    parts = ["<!-- generated by `stablenn report`: edit the code, not this file -->"]
    parts += [_block_md(b, figures) for b in doc.blocks]
    return "\n\n".join(parts) + "\n"
