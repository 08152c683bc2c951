"""Proof objects: a statement, its assumptions, and steps that SymPy and mpmath check.

A :class:`Proof` shows ``lhs = rhs`` (its ``statement``) by one or more :class:`Part`
objects.  Each part is a chain of :class:`Step` objects, ``lhs = e₁ = e₂ = … = rhs``,
each carrying the rule that justifies it; a part can hold in one case only (``x ≥ 0``),
and can use givens (a definition such as ``A := W₂W₁``, or an induction hypothesis).
A proof by cases has one part per case; a proof by induction a base part and a step part.

:meth:`Proof.verify` checks every link of every chain twice, independently: SymPy must
show that the two expressions are equal under the assumptions, and mpmath must find them
equal at random points of the domain (at 50 digits by default).  The result says which
step failed and why.

A :class:`Certificate` proves that a system of linear inequalities has no solution by
exhibiting nonnegative multipliers that combine them into ``0 > 0``; the arithmetic is
checked exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Sequence

import sympy
from sympy import Eq, IndexedBase, S, Symbol
from sympy.matrices.expressions import MatrixSymbol

from .. import _messages
from ._check import NumericCheck, SymbolicOutcome, apply_givens, symbolic_equal
from ._render import ascii_line, mathml, to_ascii, unicode_line

__all__ = ["Assumption", "Certificate", "Given", "Part", "Proof", "ProofResult", "Step", "StepResult"]

CHECK, CROSS = "✓", "✗"


def _line(expr: Any, ascii: bool) -> str:
    return ascii_line(expr) if ascii else unicode_line(expr)


def _require_sympy(value: Any, where: str) -> Any:
    if not isinstance(value, sympy.Basic):
        raise _messages.proof_not_sympy(where, value)
    return value


_SET_NAMES = {"Reals": ("ℝ", "R"), "Naturals": ("ℕ = {1, 2, …}", "{1, 2, ...}")}


@dataclass(frozen=True)
class Assumption:
    """A variable and the set it ranges over.

    Parameters
    ----------
    symbol : sympy.Symbol, sympy.IndexedBase or sympy.MatrixSymbol
        The variable. For an ``IndexedBase`` (``x`` in ``xᵢ``) and a ``MatrixSymbol``,
        the domain is that of every entry.
    domain : sympy.Set
        ``S.Reals``, an ``Interval`` such as ``Interval(0, 1)``, ``S.Naturals`` or a
        ``Range`` whose bounds may name other variables (``Range(1, N + 1)``).
    text : str
        The assumption in words, shown beside it (``"any real shift"``).
    shown : sympy expression or tuple of them, optional
        How to show the variable (``W[j, i]`` for the entries of a weight matrix).
    """

    symbol: Any
    domain: Any
    text: str = ""
    shown: Any = None

    def describe(self, *, ascii: bool = False) -> str:
        """The assumption as a reader writes it: ``a ∈ ℝ (any real shift)``."""
        sym = self.symbol
        if isinstance(sym, MatrixSymbol):
            rows, cols = (_line(s, ascii) for s in sym.shape)
            head = f"{_line(sym, ascii)}: {rows}{'x' if ascii else '×'}{cols} matrix of reals"
        else:
            if self.shown is not None:
                items = self.shown if isinstance(self.shown, tuple) else (self.shown,)
                name = ", ".join(_line(e, ascii) for e in items)
            elif isinstance(sym, IndexedBase):
                name = _line(sym.label, ascii) + ("_i" if ascii else "ᵢ")
            else:
                name = _line(sym, ascii)
            domain = self.domain
            known = _SET_NAMES.get(type(domain).__name__.replace("Naturals0", "Naturals"))
            if known and type(domain).__name__ in ("Reals", "Naturals"):
                dom = known[1 if ascii else 0]
            elif isinstance(domain, sympy.Range):
                dom = "{" + f"{_line(domain.inf, ascii)}, ..., {_line(domain.sup, ascii)}" + "}"
                if not ascii:
                    dom = dom.replace("...", "…")
            elif isinstance(domain, sympy.Interval):
                left = "(" if domain.left_open else "["
                right = ")" if domain.right_open else "]"
                dom = f"{left}{_line(domain.inf, ascii)}, {_line(domain.sup, ascii)}{right}"
            else:
                dom = _line(domain, ascii)
            head = f"{name} {'in' if ascii else '∈'} {dom}"
        return f"{head} ({self.text})" if self.text else head


@dataclass(frozen=True)
class Given:
    """A definition or hypothesis a part may use: ``target := value``.

    ``target`` is a symbol or matrix symbol, or an ``IndexedBase`` whose ``value`` is a
    ``sympy.Lambda`` of the indices (``U[j, i] := W[j, i]/2``).
    """

    target: Any
    value: Any
    kind: str = "definition"

    @property
    def expr(self) -> Any:
        """The given as a SymPy equation, for display."""
        if isinstance(self.target, IndexedBase):
            indices = self.value.variables
            return Eq(self.target[indices], self.value(*indices), evaluate=False)
        return Eq(self.target, self.value, evaluate=False)

    def text(self, *, ascii: bool = False) -> str:
        eq = self.expr
        sep = ":=" if self.kind == "definition" else "="
        return f"{self.kind}: {_line(eq.lhs, ascii)} {sep} {_line(eq.rhs, ascii)}"


@dataclass(frozen=True)
class Step:
    """One line of a proof: an expression and the rule that makes it equal to the line before.

    The first step of a chain is the left-hand side of the part's goal; its rule says so.
    """

    expr: Any
    rule: str

    def __post_init__(self) -> None:
        if isinstance(self.expr, (int, Fraction)) and not isinstance(self.expr, bool):
            object.__setattr__(self, "expr", sympy.Rational(self.expr))  # exact numbers are fine
        _require_sympy(self.expr, f"step ({self.rule})")

    def text(self, *, ascii: bool = False) -> str:
        """The expression on one line (Unicode by default, or ASCII)."""
        return _line(self.expr, ascii)

    def mathml(self) -> str:
        """The expression as presentation MathML (the inside of a ``<math>`` element)."""
        return mathml(self.expr)


@dataclass(frozen=True)
class Part:
    """A chain of steps from the goal's left-hand side to its right-hand side.

    Parameters
    ----------
    title : str
        Shown above the chain (``"case x ≥ 0"``, ``"induction step"``).
    steps : sequence of Step
        ``steps[0]`` is the left-hand side; each next one equals the one before.
    goal : sympy.Eq, optional
        What this part shows; the proof's statement when omitted.
    condition : sympy relational, optional
        The case this part covers (``x >= 0``): it narrows the variable's domain.
    givens : sequence of Given
        Definitions and hypotheses the chain may use.
    """

    title: str
    steps: tuple[Step, ...]
    goal: Any = None
    condition: Any = None
    givens: tuple[Given, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "givens", tuple(self.givens))
        if self.goal is not None:
            _require_sympy(self.goal, f"goal of part {self.title!r}")
        if self.condition is not None:
            _require_sympy(self.condition, f"condition of part {self.title!r}")
            for cond in sympy.And.make_args(self.condition):
                if not isinstance(cond, sympy.core.relational.Relational) or len(cond.free_symbols) != 1:
                    raise _messages.proof_bad_condition(self.title, cond)


@dataclass(frozen=True)
class StepResult:
    """The verdict on one step: both checks, how SymPy proved it, and why it failed."""

    part: int
    index: int
    step: Step
    symbolic: bool
    numeric: bool
    method: str = ""
    worst: float = 0.0
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when SymPy proved the step and mpmath found it true at every point."""
        return self.symbolic and self.numeric


@dataclass(frozen=True)
class ProofResult:
    """Everything ``verify`` found: one :class:`StepResult` per step, in order."""

    proof: Proof
    steps: tuple[StepResult, ...]
    points: int
    dps: int
    seconds: float

    @property
    def ok(self) -> bool:
        """True when every step of every part passed both checks."""
        return all(r.ok for r in self.steps)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def failures(self) -> tuple[StepResult, ...]:
        """The steps that failed, in order."""
        return tuple(r for r in self.steps if not r.ok)

    def summary(self, *, short: bool = False) -> str:
        """One line: verified, or which step failed first and (unless ``short``) why."""
        n = len(self.steps)
        if self.ok:
            return (
                f"{self.proof.name}: verified, {n} steps (SymPy, and mpmath at "
                f"{self.points} points, {self.dps} digits) in {self.seconds:.2f} s"
            )
        first = self.failures[0]
        where = _step_label(self.proof, first)
        head = f"{self.proof.name}: {len(self.failures)} of {n} steps failed; first: {where}"
        return head if short else f"{head}: {first.reason}"


def _step_label(proof: Proof, r: StepResult) -> str:
    label = f"step {r.index + 1}"
    if len(proof.parts) > 1:
        label = f"{proof.parts[r.part].title}, {label}"
    return label


def _missing_domains(exprs: Iterable[Any], known: set[Any], defined: set[Any]) -> list[str]:
    missing: dict[str, None] = {}
    for expr in exprs:
        labels = {ix.base.label: ix.base for ix in expr.atoms(sympy.Indexed)}
        matrices = expr.atoms(MatrixSymbol)
        dims = {s for m in matrices for d in m.shape for s in sympy.sympify(d).free_symbols}
        for sym in set(expr.free_symbols) | dims | matrices:
            if isinstance(sym, sympy.Indexed) or sym in defined:
                continue
            target = labels.get(sym, sym)
            if target not in known and target not in defined:
                missing[str(target)] = None
    return list(missing)


class Proof:
    """A statement, its assumptions, and parts whose steps are checked by SymPy and mpmath.

    Parameters
    ----------
    name : str
        Short identifier used on the command line (``"logsumexp-shift"``).
    title : str
        One line in words.
    problem : str
        Where it comes from (``"Problem 4"``, ``"stable forms"``).
    statement : sympy.Eq
        What is proved, ``lhs = rhs``.
    assumptions : sequence of Assumption
        Every free variable of the proof and its domain.
    parts : sequence of Part
        One chain, or one per case, or a base and an induction step.
    claim : str, optional
        The statement in words, for the report.

    Examples
    --------
    >>> import sympy
    >>> from stablenn.proofs import Assumption, Part, Proof, Step
    >>> x = sympy.Symbol("x", real=True)
    >>> double = Proof(
    ...     "double", "twice x is x plus x", "example",
    ...     sympy.Eq(2 * x, x + x, evaluate=False),
    ...     [Assumption(x, sympy.S.Reals)],
    ...     [Part("", [Step(2 * x, "left-hand side"),
    ...                Step(sympy.Add(x, x, evaluate=False), "2x = x + x")])],
    ... )
    >>> double.verify().ok
    True
    """

    kind = "chain"

    def __init__(
        self,
        name: str,
        title: str,
        problem: str,
        statement: Any,
        assumptions: Sequence[Assumption],
        parts: Sequence[Part],
        *,
        claim: str = "",
    ):
        self.name = name
        self.title = title
        self.problem = problem
        self.statement = _require_sympy(statement, f"statement of proof {name!r}")
        self.assumptions = tuple(assumptions)
        self.parts = tuple(parts)
        self.claim = claim
        if not self.parts or any(not p.steps for p in self.parts):
            raise _messages.proof_without_steps(name)
        self._check_domains()

    # ------------------------------------------------------------------ structure
    def _exprs(self) -> list[Any]:
        out = [self.statement]
        for part in self.parts:
            out += [s.expr for s in part.steps]
            if part.goal is not None:
                out.append(part.goal)
            # an indexed definition U[j, i] := W[j, i]/2 binds its indices: check its body
            out += [g.value if isinstance(g.target, IndexedBase) else g.expr for g in part.givens]
        return out

    def _check_domains(self) -> None:
        known = {a.symbol for a in self.assumptions}
        defined = {g.target for p in self.parts for g in p.givens}
        defined |= {g.target.label for p in self.parts for g in p.givens if isinstance(g.target, IndexedBase)}
        exprs = [e for e in self._exprs() if not isinstance(e, sympy.logic.boolalg.BooleanAtom)]
        missing = _missing_domains(exprs, known, defined)
        if missing:
            raise _messages.proof_missing_domain(self.name, missing)

    def lines(self) -> list[tuple[int, int, str, Step]]:
        """``(part, index, relation, step)`` for every step, in order, for a renderer.

        ``relation`` is ``"="`` for a step equal to the line before, and ``""`` for the
        first line of a chain and for the lines of a certificate.
        """
        out = []
        for k, part in enumerate(self.parts):
            for i, step in enumerate(part.steps):
                out.append((k, i, "=" if (self.kind == "chain" and i > 0) else "", step))
        return out

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every step of every part, in order."""
        return tuple(s for p in self.parts for s in p.steps)

    def domains(self, condition: Any = None) -> dict[Any, Any]:
        """Variable -> domain, narrowed by a case condition such as ``x >= 0``."""
        out = {a.symbol: a.domain for a in self.assumptions}
        if condition is not None:
            for cond in sympy.And.make_args(condition):
                (sym,) = cond.free_symbols
                out[sym] = out.get(sym, S.Reals).intersect(cond.as_set())
        return out

    # ------------------------------------------------------------------ checking
    def verify(self, *, points: int = 8, seed: int = 0, dps: int = 50) -> ProofResult:
        """Check every step with SymPy and at random points with mpmath.

        Parameters
        ----------
        points : int
            Random points per part for the numerical check (drawn from the domains,
            signs of real variables spread so that both signs occur).
        seed : int
            Seed of the random points; the same seed gives the same points.
        dps : int
            Decimal digits of the mpmath evaluation; two values agree when their relative
            difference is below ``10^(-2 dps/3)``.

        Returns
        -------
        ProofResult
            ``ok`` is True when every step passed both checks.
        """
        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise _messages.proof_bad_points(points)
        if not isinstance(dps, int) or isinstance(dps, bool) or not 20 <= dps <= 1000:
            raise _messages.proof_bad_dps(dps)
        start = time.perf_counter()
        results: list[StepResult] = []
        for k, part in enumerate(self.parts):
            results += self._verify_part(k, part, points=points, seed=seed, dps=dps)
        return ProofResult(self, tuple(results), points, dps, time.perf_counter() - start)

    def _verify_part(self, k: int, part: Part, *, points: int, seed: int, dps: int) -> list[StepResult]:
        domains = self.domains(part.condition)
        givens = [(g.target, g.value) for g in part.givens]
        numeric = NumericCheck(domains, points=points, seed=f"{seed}:{self.name}:{k}", dps=dps)
        goal = part.goal if part.goal is not None else self.statement
        out = []
        previous = goal.lhs
        last = len(part.steps) - 1
        for i, step in enumerate(part.steps):
            links = [(previous, step.expr, "")]
            if i == last:
                links.append((step.expr, goal.rhs, "the last line is not the right-hand side of the claim: "))
            symbolic_ok, numeric_ok, methods, reasons, worst = True, True, [], [], 0.0
            for a, b, prefix in links:
                if i == 0 and a is goal.lhs and a != b:
                    prefix = "the first line is not the left-hand side of the claim: "
                sym: SymbolicOutcome = symbolic_equal(a, b, domains=domains, givens=givens)
                num = numeric.compare(apply_givens(a, givens), apply_givens(b, givens))
                worst = max(worst, num.worst)
                if sym.proved:
                    methods.append(sym.method)
                else:
                    symbolic_ok = False
                    left = sym.residue if len(sym.residue) <= 120 else sym.residue[:117] + "..."
                    left = f" (their difference reduces to {left}, not 0)" if left else ""
                    reasons.append(f"{prefix}SymPy could not show the two lines equal{left}")
                if not num.agreed:
                    numeric_ok = False
                    reasons.append(f"{prefix}{num.reason}")
            method = ", ".join(m for m in methods if m != "identical") or ("identical" if methods else "")
            out.append(StepResult(k, i, step, symbolic_ok, numeric_ok, method, worst, "; ".join(reasons)))
            previous = step.expr
        return out

    # ------------------------------------------------------------------ display
    def statement_text(self, *, ascii: bool = False) -> str:
        """The statement on one line of Unicode (or ASCII) math."""
        return _line(self.statement, ascii)

    def statement_mathml(self) -> str:
        """The statement as presentation MathML."""
        return mathml(self.statement)

    def text(self, result: ProofResult | None = None, *, ascii: bool = False) -> str:
        """The proof for a terminal: one step a line, its rule beside it, and a mark."""
        ok_mark, bad_mark = ("ok", "XX") if ascii else (CHECK, CROSS)
        verdicts = {(r.part, r.index): r for r in result.steps} if result is not None else {}
        lines = [f"{self.problem}: {self.name}: {self.title}"]
        lines.append("  claim: " + _line(self.statement, ascii) + (f"  ({self.claim})" if self.claim else ""))
        if self.assumptions:
            lines.append("  where: " + "; ".join(a.describe(ascii=ascii) for a in self.assumptions))
        for k, part in enumerate(self.parts):
            if part.title:
                lines.append(f"  {part.title}:")
            for g in part.givens:
                lines.append(f"      {g.text(ascii=ascii)}")
            rows = [
                (k_, i, f"{rel:>1} {step.text(ascii=ascii)}", step.rule)
                for k_, i, rel, step in self.lines()
                if k_ == k
            ]
            width = min(max(len(r[2]) for r in rows), 64)
            for k_, i, body, rule in rows:
                verdict = verdicts.get((k_, i))
                mark = " " if verdict is None else (ok_mark if verdict.ok else bad_mark)
                pad = body.ljust(width)
                lines.append(f"  {mark} {pad}   [{rule}]")
                if verdict is not None and not verdict.ok:
                    lines.append(f"      {'->' if ascii else '↳'} {verdict.reason}")
        if result is not None:
            lines.append("  " + result.summary(short=True))
        text = "\n".join(lines)
        return to_ascii(text) if ascii else text

    def __repr__(self) -> str:
        return f"<Proof {self.name}: {self.title}>"


class Certificate(Proof):
    """A linear system has no solution: nonnegative multipliers combine it into ``0 > 0``.

    The system is ``g_j(v) > 0`` (strict) or ``g_j(v) ≥ 0``, each ``g_j`` affine in the
    variables ``v``.  Multipliers ``λ_j ≥ 0`` with ``Σ λ_j g_j = 0`` identically, and
    ``λ_j > 0`` for at least one strict inequality, show that no ``v`` satisfies all of
    them: the combination would be ``> 0`` and is ``0``.  All arithmetic is exact.

    Parameters
    ----------
    constraints : sequence of (relation, source, rule)
        ``relation`` is ``g > 0`` or ``g >= 0`` as shown; ``source`` the expression ``g``
        must equal (for example the classifier at a data point); ``rule`` says why it is
        required.
    multipliers : sequence of int or Fraction
        One ``λ_j`` per constraint: the certificate.
    """

    kind = "certificate"

    def __init__(
        self,
        name: str,
        title: str,
        problem: str,
        assumptions: Sequence[Assumption],
        constraints: Sequence[tuple[Any, Any, str]],
        multipliers: Sequence[int | Fraction],
        *,
        claim: str = "",
    ):
        self.constraints = tuple(constraints)
        self.multipliers = tuple(multipliers)
        lam = [sympy.Rational(Fraction(m)) for m in self.multipliers]
        combo = sympy.Add(*[sympy.Mul(l, c[0].lhs, evaluate=False) for l, c in zip(lam, self.constraints)], evaluate=False)
        strict = any(isinstance(c[0], sympy.StrictGreaterThan) and l > 0 for l, c in zip(lam, self.constraints))
        rel = sympy.Gt if strict else sympy.Ge
        steps = [Step(c[0], c[2]) for c in self.constraints]
        shown = ", ".join(str(m) for m in self.multipliers)
        steps.append(Step(rel(combo, 0, evaluate=False), f"add them with multipliers λ = ({shown}) ≥ 0"))
        steps.append(Step(rel(sympy.expand(combo), 0, evaluate=False), "collect terms: every variable cancels"))
        steps.append(Step(S.false, f"{_line(steps[-1].expr, False)} is false: no solution"))
        # the claim: not all constraints hold at once, whatever the variables
        statement = sympy.Not(sympy.And(*[c[0] for c in self.constraints], evaluate=False), evaluate=False)
        super().__init__(name, title, problem, statement, assumptions, [Part("", steps)], claim=claim)
        self._lam = lam
        self._combo = combo

    def verify(self, *, points: int = 8, seed: int = 0, dps: int = 50) -> ProofResult:
        """Check the certificate exactly (and the identities at random points with mpmath)."""
        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise _messages.proof_bad_points(points)
        if not isinstance(dps, int) or isinstance(dps, bool) or not 20 <= dps <= 1000:
            raise _messages.proof_bad_dps(dps)
        start = time.perf_counter()
        numeric = NumericCheck(self.domains(), points=points, seed=f"{seed}:{self.name}", dps=dps)
        domains = self.domains()
        steps = self.parts[0].steps
        out: list[StepResult] = []
        for j, ((relation, source, _), step) in enumerate(zip(self.constraints, steps)):
            reasons = []
            kind_ok = isinstance(relation, (sympy.StrictGreaterThan, sympy.GreaterThan)) and relation.rhs == 0
            if not kind_ok:
                reasons.append("a constraint must read g > 0 or g ≥ 0")
            sym = symbolic_equal(source, relation.lhs, domains=domains)
            num = numeric.compare(source, relation.lhs)
            if not sym.proved:
                reasons.append(f"{_line(relation.lhs, False)} is not {_line(source, False)}")
            if not num.agreed:
                reasons.append(num.reason)
            out.append(StepResult(0, j, step, sym.proved and kind_ok, num.agreed, sym.method, num.worst, "; ".join(reasons)))
        n = len(self.constraints)
        # the combination: multipliers nonnegative, one strict inequality weighted
        reasons = []
        lam_ok = len(self._lam) == n and all(l >= 0 for l in self._lam)
        if not lam_ok:
            reasons.append(f"the multipliers must be {n} numbers ≥ 0; got {self.multipliers}")
        strict_ok = any(isinstance(c[0], sympy.StrictGreaterThan) and l > 0 for l, c in zip(self._lam, self.constraints))
        if not strict_ok:
            reasons.append("no strict inequality has a positive multiplier, so the sum is only ≥ 0")
        out.append(StepResult(0, n, steps[n], lam_ok and strict_ok, True, "exact arithmetic", 0.0, "; ".join(reasons)))
        # collecting terms gives exactly 0
        total = sympy.expand(self._combo)
        num = numeric.compare(self._combo, S.Zero)
        zero_ok = total == 0
        reason = "" if zero_ok else f"the combination is {_line(total, False)}, not 0: no contradiction"
        if not num.agreed:
            reason = "; ".join(r for r in (reason, num.reason) if r)
        out.append(StepResult(0, n + 1, steps[n + 1], zero_ok, num.agreed, "exact arithmetic", num.worst, reason))
        final_ok = zero_ok and strict_ok and lam_ok
        out.append(StepResult(0, n + 2, steps[n + 2], final_ok, True, "0 > 0 is false" if final_ok else "", 0.0,
                              "" if final_ok else "no contradiction was reached"))
        return ProofResult(self, tuple(out), points, dps, time.perf_counter() - start)
