"""The two independent checks behind ``Proof.verify``.

``symbolic_equal`` asks SymPy whether two expressions are equal under the assumptions;
``NumericCheck`` evaluates both at random points with mpmath at high precision.  A step is
verified only when both agree, so a SymPy simplification that fails (or, worse, a SymPy
bug that claims too much) can never pass silently, and a step that is wrong anywhere in
its domain is caught by SymPy even when the random points happen to miss the region.

The symbolic check prepares both sides the same way before comparing them:

1. substitute the part's givens (definitions, induction hypotheses);
2. replace each symbol by a SymPy dummy carrying the assumptions its domain implies
   (``x ≥ 0`` in a case, ``y ∈ [0, 1]``, ``N ≥ 1``), so that rules such as
   ``log(uv) = log u + log v`` apply only where they are true;
3. unfold the named functions (``σ``, ``softplus``, ``log1p``) into their definitions and
   carry out derivatives (differentiation is mechanical: no simplification is trusted);
4. bring finite sums to a canonical form: split over ``+``, pull out factors that do not
   depend on the index, merge adjacent ranges (Karr's convention makes that valid for any
   bounds); a whole sum then becomes one symbol, positive when its terms are positive and
   its range is not empty;
5. try cheap rewrites of the difference first (expand, expand_log, cancel), then
   ``simplify``, then, for two real sides, compare their exponentials (``exp`` is
   one-to-one on the reals), and finally split on the sign of a real variable that
   appears inside ``|.|``, ``max``, ``min`` or a piecewise definition.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import mpmath
import sympy
from sympy import (
    Abs,
    Add,
    Derivative,
    Dummy,
    Indexed,
    IndexedBase,
    Max,
    Min,
    Mul,
    Piecewise,
    S,
    Sum,
    Symbol,
)
from sympy.matrices.expressions import MatrixExpr, MatrixSymbol

from .. import _messages
from ._functions import DEFINITIONS, MPMATH
from ._render import unicode_line

__all__ = ["Domain", "NumericCheck", "SymbolicOutcome", "apply_givens", "symbolic_equal"]

Domain = Any  # a sympy Set: S.Reals, Interval(0, 1), S.Naturals, Range(1, N + 1), ...


# ---------------------------------------------------------------------------- givens
def apply_givens(expr: Any, givens: Iterable[tuple[Any, Any]]) -> Any:
    """Substitute definitions and hypotheses ``target := replacement`` until none applies.

    A target is a symbol or a matrix symbol (replaced as a whole) or an ``IndexedBase``
    whose replacement is a ``Lambda`` of the indices (``U[j, i] := W[j, i]/2``).
    """
    givens = list(givens)
    for _ in range(len(givens) + 2):
        before = expr
        for target, replacement in givens:
            if isinstance(target, IndexedBase):
                expr = expr.replace(
                    lambda node, t=target: isinstance(node, Indexed) and node.base == t,
                    lambda node, r=replacement: r(*node.indices),
                )
            else:
                expr = expr.xreplace({target: replacement})
        if expr == before:
            break
    return expr


# ---------------------------------------------------------------------- assumptions
def _assumptions_of(domain: Domain) -> dict[str, bool]:
    """SymPy assumptions implied by a domain (only those that are certain)."""
    integer = bool(domain.is_subset(S.Integers))
    if not integer and not domain.is_subset(S.Reals):
        return {}
    out: dict[str, bool] = {"integer": True} if integer else {"real": True}
    inf, sup = domain.inf, domain.sup
    lo_open = bool(getattr(domain, "left_open", False))
    hi_open = bool(getattr(domain, "right_open", False))
    if (inf > 0) == S.true or (inf >= 0) == S.true and (lo_open or (integer and (inf >= 1) == S.true)):
        out["positive"] = True
    elif (inf >= 0) == S.true:
        out["nonnegative"] = True
    if (sup < 0) == S.true or (sup <= 0) == S.true and (hi_open or (integer and (sup <= -1) == S.true)):
        out["negative"] = True
    elif (sup <= 0) == S.true:
        out["nonpositive"] = True
    return out


def refinement(domains: dict[Any, Domain]) -> dict[Any, Any]:
    """Map each plain symbol to a dummy that carries the assumptions of its domain."""
    out = {}
    for sym, domain in domains.items():
        if isinstance(sym, Symbol) and not isinstance(sym, Dummy):
            assumptions = _assumptions_of(domain)
            if assumptions:
                out[sym] = Dummy(sym.name, **assumptions)
    return out


# --------------------------------------------------------------- canonical sums
def _rebuild(expr: Any, visit: Callable[[Any], Any]) -> Any:
    if expr.is_Atom or not expr.args:
        return expr
    args = [visit(a) for a in expr.args]
    try:
        return expr.func(*args)
    except (TypeError, ValueError):  # a node that cannot be rebuilt from its arguments
        return expr


def _split_sum(total: Any) -> Any:
    """Sum(f) with f split over + and index-free factors pulled out (finite sums)."""
    if len(total.limits) > 1:  # nested form: one index per Sum
        inner = Sum(total.function, total.limits[0])
        return _split_sum(Sum(_split_sum(inner), *total.limits[1:]))
    index, lo, hi = total.limits[0]
    body = sympy.expand(total.function)
    out = []
    for term in Add.make_args(body):
        const, varying = [], []
        for factor in Mul.make_args(term):
            (varying if index in factor.free_symbols else const).append(factor)
        if varying:
            out.append(Mul(*const) * Sum(Mul(*varying), (index, lo, hi)))
        else:  # a term free of the index is counted hi - lo + 1 times
            out.append(Mul(*const) * (hi - lo + 1))
    return Add(*out)


def _as_sum(term: Any) -> Any:
    """A term ``c·Σ f`` (c free of the index) as the single sum ``Σ c·f``, else None."""
    if isinstance(term, Sum) and len(term.limits) == 1:
        return term
    if isinstance(term, Mul):
        sums = [f for f in term.args if isinstance(f, Sum)]
        if len(sums) == 1 and len(sums[0].limits) == 1:
            total = sums[0]
            coeff = Mul(*[f for f in term.args if f is not total])
            if total.limits[0][0] not in coeff.free_symbols:
                return Sum(coeff * total.function, total.limits[0])
    return None


def _same_body(a: Any, b: Any) -> bool:
    (i, _, _), (j, _, _) = a.limits[0], b.limits[0]
    return bool(sympy.expand(b.function.xreplace({j: i}) - a.function) == 0)


def _merge_adjacent(total: Any) -> Any:
    """Join sums over adjacent ranges, and a lone term next to a range, in an Add."""
    terms = list(total.args)
    changed = True
    while changed:
        changed = False
        for s in terms:
            s_sum = _as_sum(s)
            if s_sum is None:
                continue
            i, lo, hi = s_sum.limits[0]
            f = s_sum.function
            following = sympy.expand(f.xreplace({i: hi + 1}))
            preceding = sympy.expand(f.xreplace({i: lo - 1}))
            for t in terms:
                if t is s:
                    continue
                merged = None
                t_sum = _as_sum(t)
                if t_sum is None and sympy.expand(t) == following:
                    merged = Sum(f, (i, lo, hi + 1))
                elif t_sum is None and sympy.expand(t) == preceding:
                    merged = Sum(f, (i, lo - 1, hi))
                elif t_sum is not None and _same_body(s_sum, t_sum):
                    _, lo2, hi2 = t_sum.limits[0]
                    if sympy.expand(lo2 - hi - 1) == 0:
                        merged = Sum(f, (i, lo, hi2))
                if merged is not None:
                    terms.remove(s)
                    terms.remove(t)
                    terms.append(merged)
                    changed = True
                    break
            if changed:
                break
    return Add(*terms)


def canonical_sums(expr: Any) -> Any:
    """Bring every finite sum in ``expr`` to the canonical form described above."""

    def visit(node: Any) -> Any:
        node = _rebuild(node, visit)
        if isinstance(node, Add):
            node = _merge_adjacent(node)
        if isinstance(node, Sum):
            node = _split_sum(node)
        return node

    for _ in range(4):
        before = expr
        expr = visit(expr)
        if expr == before:
            break
    return expr


def _sums_to_symbols(expr: Any, table: dict[Any, Any]) -> Any:
    """Replace each outermost sum by a symbol with the sign its terms and range imply."""

    def symbol_for(total: Any) -> Any:
        if total not in table:
            index, lo, hi = total.limits[0]
            body = total.function
            nonempty = (hi - lo + 1).is_positive
            if body.is_positive and nonempty:
                table[total] = Dummy("S", positive=True)
            elif body.is_nonnegative:
                table[total] = Dummy("S", nonnegative=True)
            elif body.is_real:
                table[total] = Dummy("S", real=True)
            else:
                table[total] = Dummy("S")
        return table[total]

    def visit(node: Any) -> Any:
        if isinstance(node, Sum) and len(node.limits) == 1:
            return symbol_for(node)
        return _rebuild(node, visit)

    return visit(expr)


# ---------------------------------------------------------------- symbolic check
@dataclass(frozen=True)
class SymbolicOutcome:
    """What SymPy concluded about ``a = b``: proved or not, how, and what was left."""

    proved: bool
    method: str
    residue: str = ""


def _unfold(expr: Any) -> Any:
    expr = expr.replace(
        lambda node: type(node) in DEFINITIONS,
        lambda node: DEFINITIONS[type(node)](node.args[0]),
    )
    # carry out derivatives now that every function is spelled out
    return expr.replace(lambda node: isinstance(node, Derivative), lambda node: node.doit())


def _exponentials(d: Any, a: Any, b: Any) -> Any:
    if a.is_real and b.is_real:  # exp is one-to-one on the reals
        return sympy.simplify(sympy.expand(sympy.exp(a)) - sympy.expand(sympy.exp(b)))
    return d


_STRATEGIES: list[tuple[str, Callable[[Any, Any, Any], Any]]] = [
    ("expand", lambda d, a, b: sympy.expand(d)),
    ("expand_log", lambda d, a, b: sympy.expand(sympy.expand_log(sympy.expand(d), deep=True))),
    ("cancel", lambda d, a, b: sympy.cancel(sympy.together(sympy.expand(d)))),
    ("simplify", lambda d, a, b: sympy.simplify(d)),
    ("rewrite in exp, simplify", lambda d, a, b: sympy.simplify(d.rewrite(sympy.exp))),
    ("compare exponentials", _exponentials),
]


def _is_zero(value: Any) -> bool:
    if isinstance(value, MatrixExpr):
        return bool(value.is_ZeroMatrix) or value == 0
    return value == 0


def _sign_unknown_symbols(expr: Any) -> list[Any]:
    found: dict[str, Any] = {}
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (Abs, Max, Min, Piecewise, sympy.sign, sympy.Heaviside)):
            for sym in node.free_symbols:
                if (
                    isinstance(sym, Symbol)
                    and sym.is_real
                    and sym.is_nonnegative is None
                    and sym.is_negative is None
                ):
                    found.setdefault(sym.name, sym)
    return [found[name] for name in sorted(found)]


def _compare(a: Any, b: Any, depth: int) -> SymbolicOutcome:
    if isinstance(a, MatrixExpr) or isinstance(b, MatrixExpr):
        d = a - b
        for name, rewrite in (
            ("expand", lambda m: m.expand().doit()),
            ("expand both sides", lambda m: (a.expand() - b.expand()).doit().expand()),
        ):
            try:
                if _is_zero(rewrite(d)):
                    return SymbolicOutcome(True, name)
            except Exception:  # noqa: BLE001 - proves nothing
                continue
        return SymbolicOutcome(False, "", unicode_line(d.expand()))
    d = a - b
    if _is_zero(d):
        return SymbolicOutcome(True, "evaluation")
    for name, rewrite in _STRATEGIES:
        try:
            result = rewrite(d, a, b)
        except Exception:  # noqa: BLE001 - a rewrite SymPy cannot do simply proves nothing
            continue
        if _is_zero(result):
            return SymbolicOutcome(True, name)
    residue = unicode_line(sympy.expand(d))
    if depth < 3:
        for sym in _sign_unknown_symbols(d):
            assumptions = {k: v for k, v in sym.assumptions0.items() if v is True and k in ("integer", "real")}
            assumptions.setdefault("real", True)
            cases = (
                (f"{sym.name} ≥ 0", Dummy(sym.name, nonnegative=True, **assumptions)),
                (f"{sym.name} < 0", Dummy(sym.name, negative=True, **assumptions)),
            )
            outcomes = [
                (label, _compare(a.xreplace({sym: case}), b.xreplace({sym: case}), depth + 1))
                for label, case in cases
            ]
            if all(outcome.proved for _, outcome in outcomes):
                how = "; ".join(f"{label}: {outcome.method}" for label, outcome in outcomes)
                return SymbolicOutcome(True, f"cases ({how})")
    return SymbolicOutcome(False, "", residue)


def _summandwise(a: Any, b: Any, depth: int) -> SymbolicOutcome | None:
    """Compare ``a − b`` sum by sum: group ``c·Σ f`` terms by range, each group's summand
    must vanish identically, and so must what is left outside the sums."""
    d = sympy.expand(a - b)
    groups: dict[tuple[Any, Any], Any] = {}
    rest = []
    for term in Add.make_args(d):
        total = _as_sum(term)
        if total is None:
            if any(isinstance(n, Sum) for n in sympy.preorder_traversal(term)):
                return None
            rest.append(term)
            continue
        index, lo, hi = total.limits[0]
        key = (lo, hi)
        if key not in groups:
            groups[key] = (index, [])
        j, bodies = groups[key]
        bodies.append(total.function.xreplace({index: j}))
    if not groups:
        return None
    methods = []
    rest_outcome = _compare(Add(*rest), S.Zero, depth + 1) if rest else SymbolicOutcome(True, "")
    if not rest_outcome.proved:
        return None
    for (lo, hi), (j, bodies) in groups.items():
        table: dict[Any, Any] = {}
        body = _sums_to_symbols(canonical_sums(Add(*bodies)), table)
        outcome = _compare(body, S.Zero, depth + 1)
        if not outcome.proved:
            return None
        methods.append(outcome.method)
    return SymbolicOutcome(True, "term by term in each sum: " + ", ".join(sorted(set(methods))))


def symbolic_equal(
    a: Any, b: Any, *, domains: dict[Any, Domain], givens: Iterable[tuple[Any, Any]] = ()
) -> SymbolicOutcome:
    """Ask SymPy whether ``a = b`` holds for every value the domains allow."""
    if a == b:
        return SymbolicOutcome(True, "identical")
    givens = list(givens)
    a, b = apply_givens(a, givens), apply_givens(b, givens)
    refine = refinement(domains)
    table: dict[Any, Any] = {}
    try:
        ca = canonical_sums(_unfold(a.xreplace(refine)))
        cb = canonical_sums(_unfold(b.xreplace(refine)))
        pa, pb = _sums_to_symbols(ca, table), _sums_to_symbols(cb, table)
        outcome = _compare(pa, pb, 0)
        if not outcome.proved and table and not isinstance(ca, MatrixExpr):
            termwise = _summandwise(ca, cb, 0)
            if termwise is not None:
                return termwise
    except Exception as err:  # noqa: BLE001 - SymPy failed: the step is not proved
        return SymbolicOutcome(False, "", f"{type(err).__name__} in SymPy: {err}")
    return outcome


# ---------------------------------------------------------------- numeric check
class _Unsupported(Exception):
    pass


def _as_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    rounded = mpmath.nint(value)
    if rounded != value:
        raise _Unsupported(f"expected an integer, got {value}")
    return int(rounded)


class Evaluator:
    """Evaluate a SymPy expression with mpmath at the current working precision."""

    def __init__(self, env: dict[Any, Any]):
        self.env = env

    def __call__(self, expr: Any) -> Any:
        return self.ev(expr)

    def ev(self, e: Any) -> Any:  # noqa: C901 - one dispatch table
        env = self.env
        if e in env:
            return env[e]
        if isinstance(e, sympy.Integer):
            return mpmath.mpf(int(e))
        if isinstance(e, sympy.Rational):
            return mpmath.mpf(int(e.p)) / int(e.q)
        if isinstance(e, sympy.Float):
            return mpmath.mpf(e._mpf_)
        if e is S.Pi:
            return +mpmath.pi
        if e is S.Exp1:
            return +mpmath.e
        if e is S.true or e is S.false:
            return bool(e)
        if isinstance(e, Indexed):
            values = env[e.base.label]
            return values(tuple(_as_int(self.ev(i)) for i in e.indices))
        if isinstance(e, (Symbol, MatrixSymbol)):
            raise _Unsupported(f"no value for {e}")
        if isinstance(e, sympy.MatMul) or isinstance(e, sympy.MatAdd):
            vals = [self.ev(a) for a in e.args]
            out = vals[0]
            for v in vals[1:]:
                out = out * v if isinstance(e, sympy.MatMul) else out + v
            return out
        if isinstance(e, sympy.matrices.expressions.special.OneMatrix):
            rows, cols = (_as_int(self.ev(s)) for s in e.shape)
            return mpmath.ones(rows, cols)
        if isinstance(e, sympy.ZeroMatrix):
            rows, cols = (_as_int(self.ev(s)) for s in e.shape)
            return mpmath.zeros(rows, cols)
        if isinstance(e, sympy.Identity):
            return mpmath.eye(_as_int(self.ev(e.shape[0])))
        if isinstance(e, sympy.Transpose):
            return self.ev(e.arg).T
        if isinstance(e, Add):
            vals = [self.ev(a) for a in e.args]
            out = vals[0]
            for v in vals[1:]:
                out = out + v
            return out
        if isinstance(e, Mul):
            out = mpmath.mpf(1)
            for a in e.args:
                v = self.ev(a)
                out = v * out if isinstance(v, mpmath.matrix) else out * v
            return out
        if isinstance(e, sympy.Pow):
            return mpmath.power(self.ev(e.base), self.ev(e.exp))
        if type(e) in MPMATH:
            return MPMATH[type(e)](self.ev(e.args[0]))
        simple = {
            sympy.exp: mpmath.exp,
            sympy.log: mpmath.log,
            sympy.tanh: mpmath.tanh,
            sympy.sinh: mpmath.sinh,
            sympy.cosh: mpmath.cosh,
            Abs: abs,
            sympy.sign: mpmath.sign,
        }
        if e.func in simple and len(e.args) == 1:
            return simple[e.func](self.ev(e.args[0]))
        if isinstance(e, (Max, Min)):
            vals = [self.ev(a) for a in e.args]
            return max(vals) if isinstance(e, Max) else min(vals)
        if isinstance(e, Piecewise):
            for piece, cond in e.args:
                if self.ev(cond):
                    return self.ev(piece)
            raise _Unsupported("no branch of the piecewise expression applies")
        if isinstance(e, sympy.core.relational.Relational):
            lhs, rhs = self.ev(e.lhs), self.ev(e.rhs)
            ops = {
                sympy.Eq: lambda u, v: u == v,
                sympy.Ne: lambda u, v: u != v,
                sympy.Ge: lambda u, v: u >= v,
                sympy.Gt: lambda u, v: u > v,
                sympy.Le: lambda u, v: u <= v,
                sympy.Lt: lambda u, v: u < v,
            }
            return ops[e.func](lhs, rhs)
        if isinstance(e, sympy.And):
            return all(self.ev(a) for a in e.args)
        if isinstance(e, sympy.Or):
            return any(self.ev(a) for a in e.args)
        if isinstance(e, sympy.Not):
            return not self.ev(e.args[0])
        if isinstance(e, Sum):
            return self._sum(e)
        if isinstance(e, Derivative):
            return self._derivative(e)
        raise _Unsupported(f"cannot evaluate {type(e).__name__} numerically")

    def _sum(self, e: Any) -> Any:
        if len(e.limits) > 1:
            return self.ev(Sum(Sum(e.function, e.limits[0]), *e.limits[1:]))
        index, lo, hi = e.limits[0]
        lo, hi = _as_int(self.ev(lo)), _as_int(self.ev(hi))
        sign = 1
        if hi < lo - 1:  # Karr's convention: sum_{a}^{b} = -sum_{b+1}^{a-1}
            lo, hi, sign = hi + 1, lo - 1, -1
        total = mpmath.mpf(0)
        for value in range(lo, hi + 1):
            total += Evaluator({**self.env, index: mpmath.mpf(value)}).ev(e.function)
        return sign * total

    def _derivative(self, e: Any) -> Any:
        (var, order), *rest = e.variable_count
        inner = Derivative(e.expr, *rest) if rest else e.expr
        at = self.ev(var)

        def f(t: Any) -> Any:
            return Evaluator({**self.env, var: t}).ev(inner)

        return mpmath.diff(f, at, order)


def _close(u: Any, v: Any, tol: Any) -> tuple[bool, Any]:
    """(agree, relative difference) of two scalars, matrices or truth values."""
    if isinstance(u, bool) or isinstance(v, bool):
        return (u == v), (0 if u == v else 1)
    if isinstance(u, mpmath.matrix) or isinstance(v, mpmath.matrix):
        if not (isinstance(u, mpmath.matrix) and isinstance(v, mpmath.matrix)):
            return False, mpmath.inf
        if (u.rows, u.cols) != (v.rows, v.cols):
            return False, mpmath.inf
        worst = mpmath.mpf(0)
        for r in range(u.rows):
            for c in range(u.cols):
                ok, err = _close(u[r, c], v[r, c], tol)
                worst = max(worst, err)
        return worst <= tol, worst
    if mpmath.isnan(u) or mpmath.isnan(v):
        return False, mpmath.inf
    if mpmath.isinf(u) or mpmath.isinf(v):
        return (u == v), (0 if u == v else mpmath.inf)
    err = abs(u - v) / max(1, abs(u), abs(v))
    return err <= tol, err


def _show(value: Any) -> str:
    if isinstance(value, mpmath.matrix):
        return f"a {value.rows}×{value.cols} matrix"
    if isinstance(value, bool):
        return str(value)
    return mpmath.nstr(value, 8)


@dataclass
class NumericOutcome:
    """Did the two sides agree at every point, the worst relative difference, and where not."""

    agreed: bool
    worst: float
    reason: str = ""
    where: dict[str, str] = field(default_factory=dict)


def _log_uniform(rng: random.Random, lo: float = 0.01, hi: float = 20.0) -> float:
    return float(mpmath.exp(rng.uniform(float(mpmath.log(lo)), float(mpmath.log(hi)))))


class NumericCheck:
    """Random points drawn from the domains, shared by every step of one part."""

    def __init__(self, domains: dict[Any, Domain], *, points: int, seed: str, dps: int):
        self.dps = dps
        self.tol = mpmath.mpf(10) ** (-(dps * 2 // 3))
        self.points: list[dict[Any, Any]] = []
        self.shown: list[dict[str, str]] = []
        rng = random.Random(seed)
        signed = [
            s for s, d in domains.items()
            if isinstance(s, Symbol) and not d.free_symbols
            and d.is_subset(S.Reals) and not d.is_subset(S.Integers)
            and (d.inf < 0) == S.true and (d.sup > 0) == S.true
        ]
        with mpmath.workdps(dps):
            for p in range(points):
                env: dict[Any, Any] = {}
                shown: dict[str, str] = {}
                pending = dict(domains)
                while pending:
                    progress = False
                    for sym, domain in list(pending.items()):
                        concrete = domain
                        if domain.free_symbols:
                            concrete = domain.subs(
                                {k: _exact(v) for k, v in env.items() if isinstance(k, Symbol) and not callable(v)}
                            )
                        if concrete.free_symbols:
                            continue
                        value = self._draw(sym, concrete, rng, p, signed, env, f"{seed}:{p}")
                        env[sym.label if isinstance(sym, IndexedBase) else sym] = value
                        if not callable(value) and not isinstance(value, mpmath.matrix):
                            shown[str(sym)] = mpmath.nstr(value, 6)
                        del pending[sym]
                        progress = True
                    if not progress:
                        raise _messages.proof_domain_cycle([str(s) for s in pending])
                self.points.append(env)
                self.shown.append(shown)

    def _draw(self, sym: Any, domain: Domain, rng: random.Random, p: int, signed: list,
              env: dict[Any, Any], tag: str) -> Any:
        if isinstance(sym, IndexedBase):
            def entry(index: tuple[int, ...], _tag: str = f"{tag}:{sym}") -> Any:
                local = random.Random(f"{_tag}:{index}")
                return mpmath.mpf(local.choice((-1, 1)) * _log_uniform(local, 0.05, 6.0))
            return entry
        if isinstance(sym, MatrixSymbol):
            rows, cols = (_as_int(Evaluator(env).ev(s)) for s in sym.shape)
            local = random.Random(f"{tag}:{sym.name}")
            return mpmath.matrix([[local.uniform(-2, 2) for _ in range(cols)] for _ in range(rows)])
        if domain.is_subset(S.Integers):
            lo = int(domain.inf)
            span = 5 if domain.sup is S.Infinity else int(domain.sup) - lo + 1
            return mpmath.mpf(lo + rng.randrange(max(1, min(span, 5))))
        inf, sup = domain.inf, domain.sup
        if inf.is_finite and sup.is_finite:
            if p == 0 and not getattr(domain, "left_open", False):
                return mpmath.mpf(float(inf))
            if p == 1 and not getattr(domain, "right_open", False):
                return mpmath.mpf(float(sup))
            return mpmath.mpf(rng.uniform(float(inf), float(sup)))
        magnitude = _log_uniform(rng)
        if inf.is_finite:
            return mpmath.mpf(float(inf)) + magnitude
        if sup.is_finite:
            return mpmath.mpf(float(sup)) - magnitude
        j = signed.index(sym) if sym in signed else 0
        if p < 2 ** min(len(signed), 5):
            sign = -1 if (p >> j) & 1 else 1
        else:
            sign = rng.choice((-1, 1))
        return mpmath.mpf(sign * magnitude)

    def compare(self, a: Any, b: Any) -> NumericOutcome:
        worst = mpmath.mpf(0)
        with mpmath.workdps(self.dps):
            for env, shown in zip(self.points, self.shown):
                try:
                    u = Evaluator(env).ev(a)
                    v = Evaluator(env).ev(b)
                except Exception as err:  # noqa: BLE001 - cannot evaluate: not shown equal
                    return NumericOutcome(False, float("inf"), f"mpmath could not evaluate a side: {err}", shown)
                agreed, err = _close(u, v, self.tol)
                worst = max(worst, err) if not mpmath.isinf(err) else mpmath.inf
                if not agreed:
                    return NumericOutcome(
                        False, float(worst),
                        f"at {_where(shown)} the previous line is {_show(u)} but this one is {_show(v)}",
                        shown,
                    )
        return NumericOutcome(True, float(worst))


def _exact(value: Any) -> Any:
    """An mpmath number as an exact SymPy number (an Integer when it is one)."""
    if value == mpmath.nint(value):
        return sympy.Integer(int(value))
    return sympy.Float(value, 30)


def _where(shown: dict[str, str]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sorted(shown.items())) or "a random point"
