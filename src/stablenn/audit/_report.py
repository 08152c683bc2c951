"""Rendering audits: a text table, Markdown, and JSON with a stable schema.

The JSON schema (``"schema": "stablenn-audit/1"``) is documented in ``docs/audit.md``;
fields are only ever added to it, never renamed or removed, within version 1.  Numbers
that are not finite (an ``inf`` ULP error, a NaN result) are written as the strings
``"inf"``, ``"-inf"`` and ``"nan"`` so that any JSON reader takes the file; interval ends
are written as the shortest decimal that reads back as the same float (exact in
float64) and also in C99 hexadecimal (``lo_hex``).

Everything the user typed (a formula) reaches Markdown only escaped (`escape_markdown`);
JSON escaping is the JSON encoder's.

>>> escape_markdown("a*b_c | <x>")
'a\\\\*b\\\\_c \\\\| &lt;x&gt;'
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from ._engine import Audit, Run

__all__ = ["SCHEMA", "audit_dict", "escape_markdown", "to_json", "to_markdown", "to_table", "summary_table"]

SCHEMA = "stablenn-audit/1"

_RESULT_KEYS = (
    "function",
    "dtype",
    "implementation",
    "label",
    "backend",
    "count",
    "max_ulp",
    "p999_ulp",
    "frac_above_1ulp",
    "max_bits",
    "nan_where_finite",
    "inf_where_finite",
    "wrong_special",
    "budget",
    "within_budget",
    "worst_input",
    "worst_got",
    "worst_exact",
    "skipped_inputs",
    "raised",
    "failed",
    "intervals",
    "intervals_left_out",
)


def _clean(value: Any) -> Any:
    """JSON-ready: non-finite floats as strings, NumPy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            value = value.tolist()
            return _clean(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def result_dict(audit: Audit, run: Run) -> dict[str, Any]:
    """One implementation's result, keys in the documented order."""
    r = run.result
    within = None if r.budget is None or run.failed else bool(r.ok)
    out = {
        "function": audit.subject,
        "dtype": audit.dtype,
        "implementation": run.name,
        "label": run.label,
        "backend": r.backend,
        "count": r.count,
        "max_ulp": r.max_ulp_checked if run.name == "stablenn" else r.max_ulp,
        "p999_ulp": r.p999_ulp,
        "frac_above_1ulp": r.frac_above_1ulp,
        "max_bits": r.max_bits,
        "nan_where_finite": r.nan_where_finite,
        "inf_where_finite": r.inf_where_finite,
        "wrong_special": r.wrong_special,
        "budget": r.budget,
        "within_budget": within,
        "worst_input": r.worst_input,
        "worst_got": r.worst_got,
        "worst_exact": r.worst_exact,
        "skipped_inputs": run.skipped_cases,
        "raised": run.raised,
        "failed": run.failed,
        "intervals": [iv.to_dict() for iv in run.intervals],
        "intervals_left_out": run.intervals_left_out,
    }
    if run.name == "stablenn" and r.max_ulp_checked != r.max_ulp:
        out["max_ulp_raw"] = r.max_ulp  # logsumexp near 0: the conditioning tolerance excused the rest
    return out


def audit_dict(audit: Audit) -> dict[str, Any]:
    """One audit as the JSON object of the schema."""
    return {
        "subject": audit.subject,
        "kind": audit.kind,
        "dtype": audit.dtype,
        "samples": audit.samples,
        "seed": audit.seed,
        "threshold_ulp": audit.threshold,
        "variables": list(audit.variables),
        "vector_variables": list(audit.vector_variables),
        "ranges": {k: [lo, hi] for k, (lo, hi) in audit.ranges.items()},
        "results": [result_dict(audit, run) for run in audit.runs],
        "skipped": [{"implementation": n, "reason": why} for n, why in audit.skipped],
        "rewrites": [
            {"rule": w.rule, "before": str(w.before), "after": str(w.after), "call": w.call, "why": w.why}
            for w in audit.rewrites
        ],
        "notes": list(audit.notes),
        "timing": dict(audit.timing),
    }


def to_json(audits: Sequence[Audit], *, check: dict[str, Any] | None = None) -> str:
    """The JSON document: schema, version, the audits, and the budget check if run.

    >>> from stablenn.audit._engine import audit_function
    >>> doc = json.loads(to_json([audit_function("sigmoid", "float32", samples=50, impls=["stablenn"], processes=1)]))
    >>> doc["schema"], sorted(doc["audits"][0]["results"][0])[:4]
    ('stablenn-audit/1', ['backend', 'budget', 'count', 'dtype'])
    """
    from stablenn import __version__

    doc: dict[str, Any] = {"schema": SCHEMA, "stablenn_version": __version__, "audits": [audit_dict(a) for a in audits]}
    if check is not None:
        doc["check"] = check
    return json.dumps(_clean(doc), indent=2, allow_nan=False)


# ---------------------------------------------------------------- text


def _u(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    if value == int(value) and abs(value) < 1e6:
        return f"{int(value)}"
    return f"{value:.3g}"


def _verdict(run: Run) -> str:
    r = run.result
    if run.failed:
        return "failed"
    if r.budget is None:
        return "-"
    return f"{r.budget:g} {'ok' if r.ok else 'OVER'}"


def _row_cells(audit: Audit, run: Run) -> list[str]:
    r = run.result
    if run.failed:
        return [run.name, run.label, "-", "-", "-", "-", "-", "-", "-", f"raised {run.failed}"]
    shown = r.max_ulp_checked if run.name == "stablenn" else r.max_ulp
    mark = "*" if run.name == "stablenn" and r.max_ulp_checked != r.max_ulp else ""
    return [
        run.name,
        run.label,
        _u(shown) + mark,
        _u(r.p999_ulp),
        f"{r.frac_above_1ulp:.2%}",
        f"{r.max_bits:.1f}",
        str(r.nan_where_finite),
        str(r.inf_where_finite),
        str(r.wrong_special),
        _verdict(run),
    ]


_HEAD = ["implementation", "called as", "max ULP", "p99.9", ">1 ULP", "bits", "NaN", "inf", "special", "budget"]


def _columns(rows: list[list[str]], head: list[str], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    widths = [min(w, 48) for w in widths]

    def fit(cell: str, w: int) -> str:
        return cell if len(cell) <= w else cell[: w - 3] + "..."

    def line(cells: list[str]) -> str:
        return "  ".join(
            fit(c, w).rjust(w) if i in right else fit(c, w).ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(head), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def _title(audit: Audit) -> str:
    what = {"function": audit.subject, "formula": f"formula {audit.subject}", "gradient": audit.subject}[audit.kind]
    unit = {
        "function": "inputs",
        "formula": "points",
        "gradient": "inputs",
    }[audit.kind]
    ranges = "".join(f", {k} in [{lo!r}, {hi!r}]" for k, (lo, hi) in audit.ranges.items())
    return (
        f"{what} in {audit.dtype}: {audit.samples} {unit} (seed {audit.seed}{ranges}); "
        "error in ULP against the correctly rounded exact value (mpmath)"
    )


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, list):
        items = [repr(v) for v in value[:8]]
        text = "[" + ", ".join(items) + (f", ... ({len(value)} values)]" if len(value) > 8 else "]")
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _worst(run: Run) -> str:
    r = run.result
    inp = ", ".join(f"{k}={_short(v)}" for k, v in r.worst_input.items())
    return f"{inp}: got {r.worst_got!r}, exact {r.worst_exact!r}"


def to_table(audit: Audit, *, max_intervals: int = 8) -> str:
    """The audit as plain text: the table, worst inputs, bad intervals, rewrites, time."""
    lines = [_title(audit), ""]
    rows = [_row_cells(audit, run) for run in audit.runs]
    lines += _columns(rows, _HEAD, {2, 3, 4, 5, 6, 7, 8})
    if any(run.name == "stablenn" and run.result.max_ulp_checked != run.result.max_ulp for run in audit.runs):
        raw = next(run.result.max_ulp for run in audit.runs if run.name == "stablenn")
        lines.append(
            f"* the largest error not excused by logsumexp's conditioning tolerance near 0 (raw maximum {_u(raw)} ULP; "
            "see stablenn.audit._budgets.logsumexp_tolerance)"
        )
    if audit.skipped:
        lines.append("not compared: " + "; ".join(f"{n} ({why})" for n, why in audit.skipped))
    lines.append("")
    lines.append("worst input of each implementation:")
    for run in audit.runs:
        if not run.failed and run.result.count:
            lines.append(f"  {run.name}: {_worst(run)}")
        extra = []
        if run.skipped_cases:
            extra.append(f"took no {run.skipped_cases} of the inputs (e.g. weights it does not accept)")
        if run.raised:
            extra.append(f"raised an exception on {run.raised} inputs (counted as NaN)")
        if extra:
            lines.append(f"    ({'; '.join(extra)})")
    if any(run.intervals for run in audit.runs):
        lines.append("")
        lines.append(
            f"where it breaks (exact float ends; 'lost': all digits lost, '>{_u(audit.threshold)}': error above "
            f"{_u(audit.threshold)} ULP):"
        )
        for run in audit.runs:
            if not run.intervals:
                continue
            lines.append(f"  {run.name}:")
            ordered = sorted(run.intervals, key=lambda iv: (iv.level != "lost", iv.lo))
            for iv in ordered[:max_intervals]:
                tag = "lost" if iv.level == "lost" else f">{_u(audit.threshold)}"
                where = f" in {iv.where}" if iv.where else ""
                lines.append(
                    f"    {tag:<5} [{iv.lo!r}, {iv.hi!r}]  {iv.cause}{where}  (max {_u(iv.max_ulp)} ULP, "
                    f"{iv.bad} of {iv.samples} samples bad)"
                )
            more = len(ordered) - min(len(ordered), max_intervals) + run.intervals_left_out
            if more:
                lines.append(f"    ... and {more} more (see --format json)")
    if audit.rewrites:
        lines.append("")
        lines.append("suggested rewrites (the 'rewrite' row audits the formula with all of them applied):")
        for w in audit.rewrites:
            lines.append(f"  {w.before}  ->  {w.call}   [{w.rule}]")
            lines.append(f"      why: {w.why}")
    elif audit.kind == "formula":
        lines.append("")
        lines.append("no rewrite rule matches this formula.")
    for note in audit.notes:
        lines.append(f"note: {note}")
    lines.append("")
    lines.append(_timing(audit))
    return "\n".join(lines)


def _timing(audit: Audit) -> str:
    t = audit.timing
    return (
        f"time: {t.get('wall_s', 0.0):.1f} s wall, {t.get('cpu_s', 0.0):.1f} s CPU "
        f"(exact reference: {t.get('oracle_s', 0.0):.1f} s on {int(t.get('processes', 1))} processes)"
    )


# ---------------------------------------------------------------- Markdown


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#|~$])")


def escape_markdown(text: str) -> str:
    """`text` safe inside Markdown (and a GFM table cell): specials backslash-escaped,
    ``<``, ``>`` and ``&`` as HTML entities, line breaks as spaces."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def to_markdown(audit: Audit) -> str:
    """The audit as a Markdown section (user text escaped)."""
    e = escape_markdown
    lines = [f"### {e(_title(audit))}", ""]
    lines.append("| " + " | ".join(_HEAD) + " |")
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(_HEAD))) + "|")
    for run in audit.runs:
        cells = _row_cells(audit, run)
        lines.append("| " + " | ".join([e(cells[0]), e(cells[1])] + cells[2:]) + " |")
    if audit.skipped:
        lines += ["", "Not compared: " + "; ".join(f"{e(n)} ({e(why)})" for n, why in audit.skipped) + "."]
    intervals = [(run, iv) for run in audit.runs for iv in run.intervals]
    if intervals:
        lines += ["", "| implementation | level | lo | hi | cause | max ULP |", "|---|---|---:|---:|---|---:|"]
        for run, iv in intervals:
            cause = iv.cause + (f" in {iv.where}" if iv.where else "")
            level = "all digits lost" if iv.level == "lost" else f"above {_u(audit.threshold)} ULP"
            lines.append(f"| {e(run.name)} | {e(level)} | {e(repr(iv.lo))} | {e(repr(iv.hi))} | {e(cause)} | {e(_u(iv.max_ulp))} |")
    if audit.rewrites:
        lines += ["", "Suggested rewrites:", ""]
        for w in audit.rewrites:
            lines.append(f"- {e(str(w.before))} → {e(w.call)}: {e(w.why)}")
    for note in audit.notes:
        lines += ["", f"Note: {e(note)}"]
    lines += ["", e(_timing(audit))]
    return "\n".join(lines)


# ---------------------------------------------------------------- --all


def summary_table(audits: Sequence[Audit], *, markdown: bool = False) -> str:
    """One row per function, dtype and implementation: max ULP against the budget."""
    head = ["function", "dtype", "implementation", "max ULP", "p99.9", "NaN", "inf", "special", "budget"]
    rows = []
    for a in audits:
        for run in a.runs:
            c = _row_cells(a, run)
            rows.append([a.subject, a.dtype, run.name, c[2], c[3], c[6], c[7], c[8], c[9]])
    if markdown:
        e = escape_markdown
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|"]
        out += ["| " + " | ".join(e(c) for c in r) + " |" for r in rows]
        return "\n".join(out)
    return "\n".join(_columns(rows, head, {3, 4, 5, 6, 7}))
