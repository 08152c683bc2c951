"""What the report says: the sheet's problems, their proofs and evidence, as document blocks.

`build_document` turns the measured `ReportData` into a `_doc.Document`.  Every number in
it comes from `ReportData`; where a piece is a `Missing`, the page says so in a notice at
that place and in the summary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._doc import (
    Document,
    Figure,
    Heading,
    ListBlock,
    Math,
    MathBlock,
    Notice,
    Paragraph,
    ProofView,
    Table,
    Text,
    math_from_sympy,
)
from ._evidence import AuditOutcome, BceForms, ConversionRow, Missing, SavedRow, Sizes
from ._sweeps import Sweep, format_intervals

__all__ = ["PROBLEMS", "ReportData", "build_document"]


@dataclass
class ReportData:
    """Everything measured in one build (filled in by `_build`)."""

    sizes: Sizes
    mode: str
    machine: dict[str, str]
    versions: dict[str, str]
    proofs: list[tuple[Any, Any]] = field(default_factory=list)  #: (Proof, ProofResult or Missing)
    sheet: list[tuple[Any, Any]] | Missing = field(default_factory=list)
    proof_error: Missing | None = None
    sweeps: dict[str, Sweep | Missing] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)  #: figure key -> inline SVG
    gradients: dict[str, Sweep | Missing] = field(default_factory=dict)
    gradient_audits: dict[str, dict[str, AuditOutcome | Missing]] = field(default_factory=dict)  #: function -> dtype
    saved: list[SavedRow] | Missing | None = None
    memory: Any = None
    bce: BceForms | Missing | None = None
    demo: Any = None  #: NonlinearityDemo or Missing
    conversion: list[ConversionRow | Missing] = field(default_factory=list)
    audits: dict[str, dict[str, AuditOutcome | Missing]] = field(default_factory=dict)  #: function -> dtype -> audit
    times: dict[str, float] = field(default_factory=dict)
    started: str = ""
    warnings: list[str] = field(default_factory=list)  #: raised by the libraries while measuring

    def missing(self) -> list[Missing]:
        """Every Missing anywhere in the data, in page order."""
        out: list[Missing] = []

        def visit(v: Any) -> None:
            if isinstance(v, Missing):
                out.append(v)
            elif isinstance(v, dict):
                for item in v.values():
                    visit(item)
            elif isinstance(v, (list, tuple)):
                for item in v:
                    visit(item)

        for name in ("proof_error", "sheet", "proofs", "sweeps", "gradients", "gradient_audits", "saved", "memory", "bce", "demo",
                     "conversion", "audits"):
            visit(getattr(self, name))
        return out


#: (anchor, heading, proof problem label, sweeps, gradient sweeps, audited functions)
PROBLEMS: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("p1", "Problem 1: why non-linear activations", "Problem 1", (), ()),
    ("p2", "Problem 2: a sigmoid network is a tanh network", "Problem 2", ("p2-sigmoid-via-tanh", "p2-tanh-via-sigmoid"),
     ("sigmoid", "tanh", "sigmoid_via_tanh", "tanh_via_sigmoid")),
    ("p3", "Problem 3: tanh′ from tanh", "Problem 3", ("p3-sigmoid-grad", "p3-tanh-grad"),
     ("sigmoid_grad", "tanh_grad", "sigmoid_grad_from_output", "tanh_grad_from_output")),
    ("p4", "Problem 4: log-sum-exp with any shift a", "Problem 4", ("p4-logsumexp-shift", "p4-logsumexp-dominant"),
     ("logsumexp",)),
    ("p5", "Problem 5: softmax with any shift a", "Problem 5", ("p5-softmax-shift",), ("softmax", "log_softmax")),
    ("p6", "Problem 6: binary cross-entropy with logits", "Problem 6", ("p6-bce",), ("binary_cross_entropy_with_logits",)),
    ("stable", "The stable forms stablenn evaluates", "Stable forms",
     ("stable-sigmoid", "stable-softplus", "stable-log-sigmoid"),
     ("softplus", "log_sigmoid", "logit", "cross_entropy_with_logits")),
    ("notes", "The sheet's note: √(x²)", "", ("notes-sqrt",), ()),
)


# ---------------------------------------------------------------- formatting


def fmt_ulp(u: float) -> str:
    """An error in ULP for a table: ``0``, ``1``, ``3.5``, ``2.1e+09``, ``∞`` (NaN against a number)."""
    if u is None or (isinstance(u, float) and math.isnan(u)):
        return "–"
    if math.isinf(u):
        return "∞"
    if u == int(u) and u < 1e5:
        return str(int(u))
    return f"{u:.3g}" if u < 1e5 else f"{u:.2e}"


def fmt_num(v: float) -> str:
    return "NaN" if math.isnan(v) else (("∞" if v > 0 else "−∞") if math.isinf(v) else f"{v:.6g}")


def _verdict(ok: bool, yes: str = "ok", no: str = "over budget") -> Text:
    return Text(yes, "ok") if ok else Text(no, "bad")


def _missing_block(m: Missing) -> Notice:
    return Notice("missing", [Text(m.feature, "strong"), f": {m.what} — {m.reason}"])


# ---------------------------------------------------------------- the sheet's problems, transcribed


def _statement(anchor: str, proofs: dict[str, Any]) -> list[Any]:
    """The sheet's problem in its own words (transcribed and corrected), formulas as MathML."""

    def stmt(name: str) -> Any:
        p = proofs.get(name)
        return MathBlock(Math(p.statement_mathml(), p.statement_text())) if p is not None else Paragraph(
            Text(f"(the proof {name} is not available)", "warn"))

    if anchor == "p1":
        return [Paragraph("“Why do we use non-linear activation functions in neural networks? What purpose do they serve?”"),
                Paragraph("Without them a network of any depth is one affine map (proved below for symbolic matrices, "
                          "then for every depth by induction), and no affine classifier can separate XOR (proved by a "
                          "certificate: four inequalities that cannot hold together). The demo trains both kinds.")]
    if anchor == "p2":
        return [Paragraph("“Consider a neural network where the hidden units use the sigmoid activation function. Show "
                          "that there exists an equivalent network, which computes exactly the same function, but with "
                          "hidden units using tanh(x) as activation functions.”"),
                stmt("sigmoid-tanh"),
                Paragraph("The identity gives the rewrite of whole layers: halve the weights and bias of each sigmoid "
                          "layer, halve the next layer's weights and add half their sums to its bias.")]
    if anchor == "p3":
        return [Paragraph("“We already know that the derivative of the sigmoid activation function can be expressed in "
                          "terms of the function value itself. Show that the derivative of the tanh activation function "
                          "can also be expressed in terms of the function value itself. Why is this a useful property?”"),
                stmt("tanh-derivative"),
                Paragraph("Useful because backpropagation can keep only the layer's output and compute the derivative "
                          "from it, with no second evaluation of tanh and no stored input. The price, measured below: "
                          "from the output, the derivative loses its relative accuracy as the unit saturates, and "
                          "reaches exactly 0 where the true derivative is still positive; stablenn also computes it "
                          "from the input, accurately everywhere.")]
    if anchor == "p4":
        lhs = proofs.get("logsumexp-shift")
        blocks: list[Any] = [Paragraph(
            "“In machine learning you quite often come across problems which contain the following quantity”")]
        if lhs is not None:
            blocks.append(MathBlock(math_from_sympy(lhs.statement.lhs)))
        blocks.append(Paragraph(
            "“If you try to calculate it naively, you will quickly encounter underflows or overflows, depending on the "
            "scale of xᵢ. [...] To combat this issue we typically use the following identity for an arbitrary a. [...] "
            "Your task is to show that the identity holds.”"))
        blocks.append(stmt("logsumexp-shift"))
        return blocks
    if anchor == "p5":
        return [Paragraph("“Similar to the previous exercise we can compute the output of the softmax function in a "
                          "numerically stable way by introducing an arbitrary a [...], often chosen a = maxᵢ xᵢ. Show that "
                          "the above identity holds.”"),
                stmt("softmax-shift")]
    if anchor == "p6":
        return [Paragraph("“Let the logits (the values before applying sigmoid) of a single training example be x and the "
                          "corresponding label be y. [...] To ensure stability and avoid overflow, usually "
                          "implementations use this equivalent formulation. Your task is to show that the equivalence "
                          "holds.”"),
                stmt("bce-logits")]
    if anchor == "stable":
        return [Paragraph("Beyond the sheet: the identities behind the formulas stablenn actually evaluates, each proved "
                          "the same way, and each naive formula measured against its stable form.")]
    if anchor == "notes":
        return [Paragraph("The sheet's margin notes (garbled in the scan) discuss the numerical instability of z = √(x²) "
                          "and its derivative by the chain rule. The audit machinery measures such an expression like any "
                          "other: x² overflows and underflows long before |x| does.")]
    return []


# ---------------------------------------------------------------- evidence blocks


def _sweep_blocks(key: str, data: ReportData) -> list[Any]:
    sw = data.sweeps.get(key) if key in data.sweeps else data.gradients.get(key)
    if sw is None:
        return []
    if isinstance(sw, Missing):
        return [_missing_block(sw)]
    blocks: list[Any] = [Heading(4, sw.title, f"sweep-{key}")]
    svg = data.figures.get(key)
    if svg:
        blocks.append(Figure(
            key, svg,
            [f"Error in ULP against the correctly rounded exact value (mpmath oracle) on {len(sw.panels[0].x)} grid "
             "points per dtype; shaded: where the first formula exceeds the budget or returns NaN or ±∞ "
             "(runs of bad points less than 4 grid points apart joined). The budget is stablenn's, from the one "
             "budget table."],
            alt=sw.title,
        ))
    rows = []
    for panel in sw.panels:
        for s in panel.series:
            at = "–" if s.worst < 0 else fmt_num(float(panel.x[s.worst]))
            where = format_intervals(s.bad) if s.bad else "nowhere on the grid"
            rows.append([
                Text(s.label, "strong" if s.role == "stablenn" else ""), panel.dtype,
                Text(fmt_ulp(s.max_ulp), "ok" if s.max_ulp <= panel.budget and not s.nonfinite.any() else "bad"),
                at, str(int(s.nonfinite.sum())), where if not s.error else Text(f"raised {s.error}", "bad"),
            ])
    blocks.append(Table(
        ["implementation", "dtype", "max error (ULP)", f"worst at {sw.xlabel.split(' ')[0]}", "NaN/±∞ results",
         "exceeds the budget on"],
        rows, numeric=(2, 4),
    ))
    if sw.note:
        blocks.append(Paragraph(sw.note.capitalize() + ".", style="small"))
    return blocks


def _intervals_text(intervals: Sequence[dict[str, Any]], limit: int = 3) -> str:
    if not intervals:
        return "none found"
    parts = []
    for iv in intervals[:limit]:
        where = f" in {iv['where']}" if iv.get("where") else ""
        lost = "all digits lost" if iv.get("level") == "lost" else "above 1 ULP"
        parts.append(f"[{iv['lo']:.4g}, {iv['hi']:.4g}] {iv.get('cause', '')}{where} ({lost})")
    if len(intervals) > limit:
        parts.append(f"and {len(intervals) - limit} more")
    return "; ".join(parts)


def _audit_rows(outcome: AuditOutcome) -> list[list[Any]]:
    rows = []
    for r in outcome.data.get("results", []):
        ours = r.get("implementation") == "stablenn"
        label = Text(str(r.get("label", r.get("implementation", ""))), "strong" if ours else "")
        if r.get("failed"):
            rows.append([label, outcome.dtype, "–", "–", "–", "–", "–", Text(f"raised {r['failed']}", "bad"), ""])
            continue
        budget = r.get("budget")
        max_ulp = float(r.get("max_ulp", math.nan))
        if budget is None:
            verdict = Text("no budget", "muted")
        else:
            within = r.get("within_budget")
            if within is None:
                within = max_ulp <= budget and not r.get("wrong_special")
            excused = "*" if within and max_ulp > budget else ""  # the audit's conditioning tolerance
            verdict = Text(f"within {budget:g}{excused}", "ok") if within else Text(f"over {budget:g}", "bad")
        nonfinite = int(r.get("nan_where_finite", 0)) + int(r.get("inf_where_finite", 0))
        rows.append([
            label, outcome.dtype, str(r.get("count", "")), fmt_ulp(max_ulp) + ("*" if "max_ulp_raw" in r else ""),
            fmt_ulp(float(r.get("p999_ulp", math.nan))), f"{float(r.get('frac_above_1ulp', 0.0)):.2%}",
            f"{nonfinite} / {r.get('wrong_special', 0)}", verdict, _intervals_text(r.get("intervals", [])),
        ])
    return rows


_AUDIT_COLUMNS = ["implementation", "dtype", "outputs", "max ULP", "p99.9", "> 1 ULP", "NaN/±∞ / wrong special",
                  "stablenn's budget", "where it breaks (bad intervals)"]


def _audit_blocks(functions: Sequence[str], data: ReportData) -> list[Any]:
    blocks: list[Any] = []
    for f in functions:
        per = data.audits.get(f)
        if not per:
            continue
        blocks.append(Heading(5, [Text(f, "code")], f"audit-{f}"))
        rows: list[list[Any]] = []
        notes: list[str] = []
        missing: list[Missing] = []
        over: list[str] = []
        for dtype, outcome in per.items():
            if isinstance(outcome, Missing):
                missing.append(outcome)
                continue
            rows += _audit_rows(outcome)
            skipped = outcome.data.get("skipped") or []
            if skipped:
                notes.append(f"{dtype}: not compared: " + "; ".join(f"{s['implementation']} ({s['reason']})" for s in skipped))
            mine = outcome.stablenn()
            if mine is not None and mine.get("within_budget") is False:
                worst = mine.get("worst_input", {})
                text = ", ".join(f"{k}={_cell(v)}" for k, v in worst.items())
                over.append(f"{f} {dtype}: {fmt_ulp(float(mine['max_ulp']))} ULP at {text[:300]}; got "
                            f"{fmt_num(float(mine.get('worst_got', math.nan)))}, exact "
                            f"{fmt_num(float(mine.get('worst_exact', math.nan)))}")
        if rows:
            blocks.append(Table(_AUDIT_COLUMNS, rows, numeric=(2, 3, 4, 5)))
        for text in over:
            blocks.append(Notice("fail", [Text("stablenn over budget: ", "strong"), text]))
        if notes:
            blocks.append(Paragraph(" ".join(notes), style="small"))
        for dtype, outcome in per.items():
            key = f"audit-{f}-{dtype}"
            if not isinstance(outcome, Missing) and key in data.figures:
                blocks.append(Figure(key, data.figures[key],
                                     f"{f} in {dtype}: the audit's plot, error in ULP against the input's bit pattern "
                                     "(every binade the same width), the largest error per slice; bad intervals shaded.",
                                     alt=f"audit of {f} in {dtype}"))
        blocks += [_missing_block(m) for m in missing]
    if blocks:
        blocks.insert(0, Paragraph(
            "Every implementation on the same sampled inputs (every exponent, the hard regions, the special values), "
            "against the correctly rounded exact value (the audit's mpmath oracle): stablenn, the textbook formula "
            "and each installed peer (stablenn.audit's engine). * logsumexp near 0: errors beyond the ULP budget only "
            "where the result is within the conditioning tolerance of the exact value (the audit's verdict).",
            style="small"))
    return blocks


def _generic_rows(value: Any) -> tuple[list[str], list[list[Any]]] | None:
    """Columns and rows for a list of dicts or of objects with ``to_dict()`` / ``_asdict()``."""
    if not isinstance(value, (list, tuple)) or not value:
        return None
    dicts = []
    for item in value:
        if isinstance(item, dict):
            dicts.append(item)
        elif hasattr(item, "to_dict"):
            dicts.append(item.to_dict())
        elif hasattr(item, "_asdict"):
            dicts.append(item._asdict())
        else:
            return None
    columns: list[str] = []
    for d in dicts:
        for k in d:
            if k not in columns:
                columns.append(str(k))
    rows = [[_cell(d.get(c, "")) for c in columns] for d in dicts]
    return columns, rows


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return fmt_num(v)
    if isinstance(v, (dict, list, tuple)):
        text = str(v)
        return text if len(text) <= 120 else text[:117] + "..."
    return str(v)


def _proof_blocks(problem: str, data: ReportData) -> list[Any]:
    blocks: list[Any] = []
    for proof, result in data.proofs:
        if proof.problem != problem:
            continue
        if isinstance(result, Missing):
            blocks += [Heading(4, f"{proof.name}: {proof.title}"), _missing_block(result)]
        else:
            blocks.append(ProofView(proof, result))
    return blocks


def _sheet_blocks(names: Sequence[str], data: ReportData) -> list[Any]:
    if isinstance(data.sheet, Missing):
        return [_missing_block(data.sheet)]
    blocks: list[Any] = []
    for proof, result in data.sheet:
        if proof.name in names:
            blocks.append(ProofView(proof, result, expect_refused=True))
    if blocks:
        blocks.insert(0, Paragraph(
            "The sheet's handwritten derivation, transcribed line by line and checked the same way: the lines that do "
            "not follow are refused (✗), which is the right outcome for them."))
    return blocks


def _demo_blocks(data: ReportData) -> list[Any]:
    d = data.demo
    if d is None:
        return []
    if isinstance(d, Missing):
        return [_missing_block(d)]
    demo = d
    blocks: list[Any] = [Heading(4, "Linear networks of any depth against one non-linear hidden layer", "demo")]
    names = [ds.name for ds in demo.datasets]
    rows: list[list[Any]] = [["best affine classifier (exact)"] + [f"{ds.best_affine_accuracy:.1%}" for ds in demo.datasets]
                             + ["", ""]]
    labels = [m.label for m in demo.datasets[0].models]
    for i, label in enumerate(labels):
        row: list[Any] = [label]
        agree, diff = [], []
        for ds in demo.datasets:
            m = ds.models[i]
            row.append(f"{m.accuracy:.1%}")
            if m.collapse_agreement is not None:
                agree.append(f"{m.collapse_agreement:.0%}")
                diff.append(f"{m.collapse_max_difference:.2g}")
        row += [" / ".join(agree), " / ".join(diff)]
        rows.append(row)
    blocks.append(Table(
        ["network"] + [f"{n} accuracy" for n in names] + ["collapse agrees", "max |p − p′| of collapse"], rows,
        caption="scikit-learn MLPClassifier (lbfgs), trained here (stablenn.networks.nonlinearity_demo); "
                "collapse: the linear network as one affine layer (stablenn.networks.collapse), compared on the "
                "points and the plotting grid.",
    ))
    if "demo" in data.figures:
        blocks.append(Figure("demo", data.figures["demo"], "Decision boundaries (probability of class 1; the black "
                             "line is 1/2) of every network of the table.", alt="decision boundaries"))
    return blocks


def _conversion_blocks(data: ReportData) -> list[Any]:
    if not data.conversion:
        return []
    blocks: list[Any] = [Heading(4, "sigmoid_to_tanh on real models: the outputs, measured", "conversion")]
    rows = []
    for r in data.conversion:
        if isinstance(r, Missing):
            continue
        rows.append([r.model, r.hidden, r.regime, r.dtype, str(r.inputs), f"{r.max_abs:.3g}", fmt_ulp(r.max_ulp),
                     f"{r.max_normwise:.3g}"])
    if rows:
        blocks.append(Table(
            ["model", "hidden layers", "inputs", "dtype", "rows", "max |y − y′|", "max ULP (element)",
             "normwise (eps · max|y|)"], rows, numeric=(4, 5, 6, 7),
            caption="Each model and its stablenn.networks.sigmoid_to_tanh rewrite run on the same random inputs "
                    "(typical: N(0, 1) inputs and weights of order 1/√fan-in; saturated: inputs N(0, 30²), weights 8 "
                    "times larger). The difference is rounding: the new biases are rounded once, and σ(z) near 0 "
                    "carries more digits than (1 + tanh(z/2))/2; element-wise ULP is large only where an output is "
                    "near 0, the normwise difference stays a few eps.",
        ))
    blocks += [_missing_block(r) for r in data.conversion if isinstance(r, Missing)]
    return blocks


def _bce_blocks(data: ReportData) -> list[Any]:
    b = data.bce
    if b is None:
        return []
    blocks: list[Any] = [Heading(4, "stablenn's BCE against Problem 6's form, on soft labels", "bce-forms")]
    if isinstance(b, Missing):
        return blocks + [_missing_block(b)]
    blocks.append(Paragraph(
        "Both forms equal the binary cross-entropy (proofs bce-stablenn and bce-problem-6-form). In floating point "
        "they differ: Problem 6's form subtracts x·y from max(x, 0), which cancels when the label is close to 1 and "
        "x > 0 (or close to 0 and x < 0), and log(1 + e^(−|x|)) drops the tail that carries the whole loss when the "
        "label is hard. Logits from the audit sampler (every exponent, the hard regions), labels soft (uniform in "
        "(0, 1), and within 1e-8 of 0 and of 1); error in ULP against the mpmath oracle."))
    rows = []
    for dtype, stats in b.stats.items():
        for s in stats:
            x, y, got, exact = s.worst
            rows.append([s.label, dtype, str(b.pairs[dtype]), fmt_ulp(s.max_ulp), fmt_ulp(s.p999_ulp), fmt_ulp(s.median_ulp),
                         f"{s.above_1ulp:.2%}", str(s.nonfinite),
                         f"x = {x!r}, y = {y!r}: got {got!r}, exact {exact!r}"])
    blocks.append(Table(["form", "dtype", "pairs", "max ULP", "p99.9", "median", "> 1 ULP", "NaN/±∞", "worst case"],
                        rows, numeric=(2, 3, 4, 5, 6, 7)))
    if "bce-forms" in data.figures:
        blocks.append(Figure("bce-forms", data.figures["bce-forms"],
                             "Largest error per bin of min(y, 1 − y), the soft label's distance to a hard label.",
                             alt="BCE forms error against label"))
    return blocks


def _gradient_blocks(data: ReportData) -> list[Any]:
    blocks: list[Any] = [Heading(3, "Gradients: accuracy through automatic differentiation, and memory", "p3-gradients")]
    blocks.append(Paragraph(
        "What a training step actually computes: the derivative as PyTorch's autograd and jax.grad produce it, for the "
        "frameworks' own functions and for stablenn's, against the exact derivative (mpmath oracle)."))
    for key in data.gradients:
        blocks += _sweep_blocks(key, data)
    if data.gradient_audits:
        blocks.append(Heading(4, "The audit of the derivatives, over every exponent", "p3-gradient-audit"))
        rows: list[list[Any]] = []
        for name, per in data.gradient_audits.items():
            for dtype, outcome in per.items():
                if isinstance(outcome, Missing):
                    blocks.append(_missing_block(outcome))
                else:
                    rows += [[Text(f"d/dx {name}", "code")] + row for row in _audit_rows(outcome)]
        if rows:
            blocks.append(Table(["derivative"] + _AUDIT_COLUMNS, rows, numeric=(3, 4, 5, 6),
                                caption="stablenn.audit's gradient audit (audit_gradient): sampled inputs over every "
                                        "exponent against the exact derivative; bad intervals by bisection."))
    saved = data.saved
    if isinstance(saved, Missing):
        blocks.append(_missing_block(saved))
    elif saved:
        blocks.append(Heading(4, "What the forward pass keeps for backward", "saved"))
        rows = [[r.label, f"{r.saved_bytes / 2**20:.2f} MiB", f"{r.saved_bytes / r.input_bytes:.2f}", r.what]
                for r in saved]
        blocks.append(Table(
            ["forward", "saved for backward", "× input size", "which tensors"], rows, numeric=(1, 2),
            caption=f"float32 tensors of {saved[0].input_bytes // 4:,} elements; bytes of the distinct storages "
                    "PyTorch's saved-tensor hooks (torch.autograd.graph.saved_tensors_hooks) received during the forward "
                    "call. An output kept for backward costs nothing extra when the caller keeps it anyway.",
        ))
    mem = data.memory
    if isinstance(mem, Missing):
        blocks.append(_missing_block(mem))
    elif mem is not None:
        table = _generic_rows(mem if isinstance(mem, (list, tuple)) else [mem])
        if table is not None:
            blocks.append(Table(table[0], table[1], caption="benchmarks/backprop_memory.py (the gradients feature)."))
    return blocks


# ---------------------------------------------------------------- the summary


def _proof_totals(data: ReportData) -> tuple[int, int, int]:
    ok = sum(1 for _, r in data.proofs if not isinstance(r, Missing) and r.ok)
    steps = sum(len(r.steps) for _, r in data.proofs if not isinstance(r, Missing))
    return ok, len(data.proofs), steps


def _stablenn_rows(data: ReportData) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for f, per in data.audits.items():
        for dtype, outcome in per.items():
            if isinstance(outcome, Missing):
                continue
            mine = outcome.stablenn()
            if mine is not None:
                out.append((f, dtype, mine))
    return out


def _budget_totals(data: ReportData) -> tuple[int, int, list[tuple[str, str, dict[str, Any]]]]:
    within, total, over = 0, 0, []
    for f, dtype, r in _stablenn_rows(data):
        if r.get("budget") is None:
            continue
        total += 1
        if r.get("within_budget"):
            within += 1
        else:
            over.append((f, dtype, r))
    return within, total, over


def summary_line(data: ReportData) -> str:
    """One line for the terminal: proofs, budgets, missing pieces."""
    ok, n, steps = _proof_totals(data)
    within, total, _ = _budget_totals(data)
    missing = len(data.missing())
    return (f"{ok} of {n} proofs verified ({steps} steps); {within} of {total} function/dtype pairs within budget; "
            f"{missing} piece{'s' if missing != 1 else ''} of evidence missing")


def _summary(data: ReportData) -> list[Any]:
    ok, n, steps = _proof_totals(data)
    within, total, over = _budget_totals(data)
    missing = data.missing()
    blocks: list[Any] = [Heading(2, "Summary", "summary")]
    items: list[Any] = [
        [Text("Proofs: ", "strong"), Text(f"{ok} of {n} verified", "ok" if ok == n and n else "bad"),
         f" ({steps} steps, each shown equal to the one before by SymPy under the assumptions and checked at random "
         f"points by mpmath at 50 digits)."],
        [Text("Error budgets: ", "strong"),
         Text(f"{within} of {total} function/dtype pairs within budget", "ok" if within == total and total else "bad"),
         " (stablenn against the mpmath oracle; 1 ULP, 2 ULP for the float64 reductions and cross-entropy)."],
    ]
    if isinstance(data.sheet, list) and data.sheet:
        refused = sum(1 for _, r in data.sheet if not isinstance(r, Missing) and not r.ok)
        items.append([Text("The sheet's own derivations: ", "strong"),
                      Text(f"{refused} of {len(data.sheet)} refused", "ok" if refused == len(data.sheet) else "bad"),
                      " (each contains a wrong line; refusing it is the correct outcome)."])
    items.append([Text("Missing evidence: ", "strong"),
                  Text("none", "ok") if not missing else
                  Text(f"{len(missing)} piece{'s' if len(missing) != 1 else ''} (listed below)", "warn")])
    t = data.times
    if t:
        items.append([Text("Build time: ", "strong"),
                      f"{t['wall']:.1f} s wall, {t['cpu'] + t['children']:.1f} s CPU ({t['cpu']:.1f} s in this process, "
                      f"{t['children']:.1f} s in its worker processes), with the {data.mode} sample sizes."])
    blocks.append(ListBlock(items))
    if over:
        blocks.append(Notice("fail", [f"{len(over)} function/dtype pairs over budget: ",
                                      Text(", ".join(f"{f} {d} ({fmt_ulp(float(r['max_ulp']))} ULP)" for f, d, r in over),
                                           "bad"),
                                      " (details in each problem's audit table)."]))
    if data.warnings:
        blocks.append(Notice("note", [f"{len(data.warnings)} warning{'s' if len(data.warnings) != 1 else ''} raised "
                                      "by the libraries while measuring: "] + ["; ".join(data.warnings[:8])]
                             + ([f"; and {len(data.warnings) - 8} more"] if len(data.warnings) > 8 else [])))
    if missing:
        blocks.append(Heading(3, "What is missing", "missing"))
        blocks.append(ListBlock([[Text(m.feature, "strong"), f": {m.what} — {m.reason}"] for m in missing]))

    # proofs table
    rows = []
    for proof, result in data.proofs:
        if isinstance(result, Missing):
            verdict = Text("not checked", "bad")
            nsteps = "–"
        else:
            verdict = Text("✓ verified", "ok") if result.ok else Text(f"✗ {len(result.failures)} failed", "bad")
            nsteps = str(len(result.steps))
        rows.append([Text(proof.name, "code", href=f"#proof-{proof.name}"), proof.problem, proof.title, nsteps, verdict])
    if rows:
        blocks.append(Heading(3, "Every proof", "proofs"))
        blocks.append(Table(["proof", "from", "statement", "steps", "verdict"], rows, numeric=(3,)))
    elif data.proof_error is not None:
        blocks.append(_missing_block(data.proof_error))

    # budgets matrix
    blocks.append(Heading(3, "Every function against its budget", "budgets"))
    dtypes: list[str] = []
    by_fn: dict[str, dict[str, Any]] = {}
    for f, per in data.audits.items():
        by_fn.setdefault(f, {})
        for dtype, outcome in per.items():
            if dtype not in dtypes:
                dtypes.append(dtype)
            by_fn[f][dtype] = outcome.stablenn() if not isinstance(outcome, Missing) else None
    mrows = []
    for f, per in by_fn.items():
        row: list[Any] = [Text(f, "code", href=f"#audit-{f}")]
        for d in dtypes:
            r = per.get(d)
            if r is None:
                row.append(Text("missing", "warn"))
            elif r.get("budget") is None:
                row.append(Text(f"{fmt_ulp(float(r['max_ulp']))} (no budget)", "muted"))
            else:
                row.append(Text(f"{fmt_ulp(float(r['max_ulp']))} / {r['budget']:g}",
                                "ok" if r.get("within_budget") else "bad"))
        mrows.append(row)
    if mrows:
        blocks.append(Table(["function"] + [f"{d}: max ULP / budget" for d in dtypes], mrows,
                            caption="stablenn's largest error over the sampled inputs against its budget (the audit "
                                    "tables in each problem's section have the details and the peers)."))

    # where naive formulas fail
    frows = []
    for key, sw in list(data.sweeps.items()) + list(data.gradients.items()):
        if isinstance(sw, Missing):
            continue
        for panel in sw.panels:
            naive = panel.series[0]
            ours = [s for s in panel.series if s.role == "stablenn"]
            frows.append([Text(sw.title, "", href=f"#sweep-{key}"), panel.dtype, naive.label, fmt_ulp(naive.max_ulp),
                          format_intervals(naive.bad, limit=3),
                          ", ".join(f"{fmt_ulp(s.max_ulp)}" for s in ours) or "–"])
    if frows:
        blocks.append(Heading(3, "Where the naive formulas fail", "naive"))
        blocks.append(Table(["measurement", "dtype", "first formula", "its max ULP", "exceeds the budget on",
                             "stablenn max ULP"], frows, numeric=(3, 5)))

    # machine and versions
    blocks.append(Heading(3, "Machine and software", "machine"))
    blocks.append(Table(["machine", ""], [[k, v] for k, v in data.machine.items()]))
    blocks.append(Table(["library", "version"], [[Text(k, "code"), v] for k, v in data.versions.items()]))
    s = data.sizes
    blocks.append(Paragraph(
        f"Sample sizes ({data.mode}): {s.audit_samples} scalar inputs or BCE elements, and {s.audit_vectors} vectors "
        f"or cross-entropy rows, per function and dtype in the audit tables; {s.sweep_points} grid points per dtype in each "
        f"error plot; {s.bce_pairs} (logit, label) pairs per dtype for the BCE comparison; {s.proof_points} random "
        f"points per proof part for mpmath; seed {s.seed}.", style="small"))
    return blocks


# ---------------------------------------------------------------- the document


def build_document(data: ReportData) -> Document:
    """The whole report as blocks, in page order."""
    proofs = {p.name: p for p, _ in data.proofs}
    doc = Document("stablenn: the exercise sheet, proved and measured")
    doc.add(Heading(1, "stablenn: the exercise sheet, proved and measured", "top"))
    doc.add(Paragraph(
        "Every identity of the exercise sheet on activation functions and numerical stability, proved step by step "
        "with each step checked by a computer algebra system (SymPy) and by exact arithmetic (mpmath); the naive "
        "formulas measured against stablenn where they overflow, underflow or cancel; and the whole networks of "
        "Problems 1 and 2. Every number on this page was computed when it was built" +
        (f" ({data.started})." if data.started else "."), style="lead"))
    toc = [[Text(title, "", href=f"#{anchor}")] for anchor, title, *_ in PROBLEMS]
    doc.add(ListBlock([[Text("Summary", "", href="#summary")]] + toc))
    doc.add(*_summary(data))
    for anchor, title, problem, sweeps, functions in PROBLEMS:
        doc.add(Heading(2, title, anchor))
        doc.add(Heading(3, "The sheet asks" if anchor not in ("stable", "notes") else "What this section shows"))
        doc.add(*_statement(anchor, proofs))
        if problem:
            doc.add(Heading(3, "Proofs", f"{anchor}-proofs"))
            doc.add(*_proof_blocks(problem, data))
        if anchor == "p3":
            doc.add(*_sheet_blocks(("sheet-tanh", "sheet-tanh-derivative"), data))
        if anchor == "p6":
            doc.add(*_sheet_blocks(("sheet-bce",), data))
        doc.add(Heading(3, "Evidence", f"{anchor}-evidence"))
        if anchor == "p1":
            doc.add(*_demo_blocks(data))
        if anchor == "p2":
            doc.add(*_conversion_blocks(data))
        for key in sweeps:
            doc.add(*_sweep_blocks(key, data))
        if anchor == "p3":
            doc.add(*_gradient_blocks(data))
        if anchor == "p6":
            doc.add(*_bce_blocks(data))
        if functions:
            doc.add(Heading(4, "The audit of the functions involved, against the peers", f"{anchor}-audit"))
            doc.add(*_audit_blocks(functions, data))
    doc.add(Heading(2, "How to reproduce", "reproduce"))
    doc.add(ListBlock([
        [Text("scripts/report", "code"), " (or ", Text("python -m stablenn report --out DIR", "code"),
         "): this page; ", Text("--quick", "code"), " for small sample sizes."],
        [Text("stablenn prove", "code"), ": every proof in the terminal, one step a line."],
        [Text("python -m stablenn.audit._measure", "code"), ": the accuracy table alone."],
    ]))
    return doc
