"""Rewrite rules: recognise an unstable formula and suggest the stable form to call instead.

`suggest` walks a parsed formula (`stablenn.audit._expr`) from the root down and, where
a part of it matches a known unstable pattern, proposes the stable replacement: an `Expr`
the evaluators run (so the audit can measure both on the same inputs), the Python text
naming the function to call (``stablenn.softplus(x)``) and why the original breaks.

Matching is structural but not literal.  Each part of the formula is brought to a
canonical form: a polynomial, with exact rational coefficients, in "atoms" (variables,
calls with canonical arguments, reciprocals of sums, non-integer powers).  Products of
sums are expanded, ``x*x``, ``x**2`` and ``pow(x, 2)`` are the same monomial, and sums
and products are unordered, so ``1 + exp(x)``, ``exp(x) + 1`` and ``(exp(x) + 1)`` all
match, ``-(y*log(s) + (1 - y)*log(1 - s))`` and ``(y - 1)*log(1 - s) - y*log(s)`` are
one polynomial, and a sigmoid may be written ``sigmoid(x)``, ``1/(1 + exp(-x))`` or
``exp(x)/(1 + exp(x))``.  Within a chain of sums or products the rules are also tried
on every sub-collection of the terms or factors, so ``g*s*(1 - s)`` and
``a + exp(x) - 1`` are found.

The rules (each an exact identity of real functions, checked with SymPy in
``tests/test_rewrites.py``):

================  ==========================================  ===========================
rule              pattern                                      stable form
================  ==========================================  ===========================
softplus          log(1 + exp(x)), log1p(exp(x))               softplus(x)
logsumexp         log(sum(exp(v)))                             logsumexp(v)
softmax           exp(v)/sum(exp(v))                           softmax(v)
log_softmax       v - log(sum(exp(v))), log(softmax(v))        log_softmax(v)
sigmoid           1/(1 + exp(-x)), exp(x)/(1 + exp(x))         sigmoid(x)
sigmoid           1 - s (s a sigmoid of x)                     sigmoid(-x)
log_sigmoid       log(s), log(1/(1 + exp(-x)))                 log_sigmoid(x)
log_sigmoid       log(1 - s)                                   log_sigmoid(-x)
bce               -(y log s + (1 - y) log(1 - s))              bce_with_logits(x, y)
sigmoid_grad      s*(1 - s), sigmoid(x)*sigmoid(-x)            sigmoid_grad(x)
tanh_grad         1 - tanh(x)**2                               tanh_grad(x)
log1p             log(1 + x)                                   log1p(x)
expm1             exp(x) - 1                                   expm1(x)
abs               sqrt(x**2)                                   abs(x)
================  ==========================================  ===========================

Patterns already written in the shifted, stable way (``exp(v - max(v))``) are left alone.

>>> from stablenn.audit._expr import parse
>>> [r.call for r in suggest(parse("x*y - log(1 + exp(x))"))]
['stablenn.softplus(x)']
>>> print(stabilize(parse("-(y*log(sigmoid(x)) + (1 - y)*log(1 - sigmoid(x)))")))
binary_cross_entropy_with_logits(x, y)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations
from typing import Any

from stablenn.audit._expr import Binary, Call, Expr, Neg, Num, Var, number

__all__ = ["RULES", "Rewrite", "rewrite", "stabilize", "suggest"]


RULES: dict[str, str] = {
    "softplus": (
        "exp(x) overflows to inf for large x (above 709.78 in float64, 88.72 in float32), and "
        "for very negative x the sum 1 + exp(x) rounds to 1, so the log returns 0 instead of "
        "about exp(x) (every digit lost below -36.7 in float64, -16.6 in float32); "
        "softplus(x) = max(x, 0) + log1p(exp(-|x|)) never overflows and keeps the tail."
    ),
    "logsumexp": (
        "exp(v) overflows when a component is large and every term underflows to 0 when all "
        "are very negative (log 0 = -inf); logsumexp shifts by the largest component, "
        "m + log(sum(exp(v - m))), which changes nothing mathematically."
    ),
    "softmax": (
        "exp(v) overflows for large components (inf/inf = NaN) and underflows for very "
        "negative ones (0/0 = NaN); softmax shifts by the largest component first, which "
        "changes nothing mathematically."
    ),
    "log_softmax": (
        "log(sum(exp(v))) overflows and underflows like log-sum-exp, and subtracting it "
        "from v cancels when one component dominates; log_softmax shifts by the largest "
        "component and adds the others with log1p."
    ),
    "sigmoid": (
        "exp(-x) overflows for very negative x, so 1/(1 + exp(-x)) returns 0 where the "
        "answer is about exp(x) (and exp(x)/(1 + exp(x)) gives inf/inf = NaN for large x), "
        "while 1 - s cancels once s rounds to 1; stablenn.sigmoid evaluates 1/(1 + e) or "
        "e/(1 + e) with e = exp(-|x|) <= 1, and 1 - sigmoid(x) = sigmoid(-x)."
    ),
    "log_sigmoid": (
        "log of a sigmoid is -inf once the sigmoid underflows to 0 (x below about -745 in "
        "float64) and 0 once it rounds to 1 (x above 36.7 in float64, 16.6 in float32), "
        "where the answer is about x and -exp(-x); log_sigmoid(x) = "
        "min(x, 0) - log1p(exp(-|x|)) is accurate everywhere, and log(1 - sigmoid(x)) = "
        "log_sigmoid(-x)."
    ),
    "bce": (
        "log(s) and log(1 - s) become -inf once the sigmoid rounds to 0 or 1 (|x| above "
        "about 36.7 in float64, 16.6 in float32), giving inf or NaN losses, and 1 - s "
        "cancels before that; binary_cross_entropy_with_logits works from the logit: "
        "max(x, 0) - x*y + log1p(exp(-|x|))."
    ),
    "sigmoid_grad": (
        "s*(1 - s) is 0 once s rounds to 1 (x above 36.7 in float64, 16.6 in float32) "
        "though the derivative is about exp(-x), and loses relative accuracy before that; "
        "sigmoid_grad computes it from x: e/(1 + e)**2 with e = exp(-|x|)."
    ),
    "tanh_grad": (
        "1 - tanh(x)**2 is 0 once tanh(x) rounds to +-1 (|x| above about 19 in float64, 9 "
        "in float32) though the derivative is about 4 exp(-2|x|), and cancels before that; "
        "tanh_grad computes it from x without the subtraction."
    ),
    "log1p": (
        "1 + x rounds away the low digits of a small x (all of them when |x| is below half "
        "the machine epsilon), so log(1 + x) loses relative accuracy for |x| << 1; "
        "log1p(x) is accurate there."
    ),
    "expm1": (
        "exp(x) - 1 cancels for |x| << 1 (exp(x) is about 1), losing every digit when |x| "
        "is below half the machine epsilon; expm1(x) is accurate there."
    ),
    "abs": (
        "x**2 overflows to inf for |x| above the square root of the largest float "
        "(1.34e154 in float64, 1.84e19 in float32) and underflows to 0 for tiny |x|; for "
        "real x, sqrt(x**2) is |x|, which is exact."
    ),
}
"""Each rule's name and why its pattern breaks in floating point."""


@dataclass(frozen=True)
class Rewrite:
    """One suggestion: a part of the formula and its stable replacement.

    Attributes
    ----------
    rule : str
        Name of the rule (a key of `RULES`).
    before : Expr
        The part of the formula that matched, as the user wrote it (for a match inside a
        chain of sums or products: the matching terms or factors only).
    after : Expr
        Its stable form, using stablenn's primitives as functions; equal to `before` as a
        real function and runnable by every evaluator of `stablenn.audit._expr`.
    call : str
        Python text of `after`, naming the functions to call:
        ``"stablenn.softplus(x)"``, ``"numpy.log1p(x)"``.
    why : str
        What goes wrong in `before` and what the stable form does instead.
    """

    rule: str
    before: Expr
    after: Expr
    call: str
    why: str


def suggest(expr: Expr) -> list[Rewrite]:
    """The rewrites that make `expr` stable, outermost first.

    Parameters
    ----------
    expr : Expr
        A parsed formula.

    Returns
    -------
    list of Rewrite
        Empty when no rule matches.  A match is not searched again for smaller matches,
        but the arguments of its stable form are (so ``log(1 + exp(log(1 + x)))`` gives
        ``softplus`` and then ``log1p``).

    Examples
    --------
    >>> from stablenn.audit._expr import parse
    >>> for r in suggest(parse("exp(v)/sum(exp(v)) + sqrt(x*x)")):
    ...     print(r.rule, "|", r.before, "->", r.call)
    softmax | exp(v)/sum(exp(v)) -> stablenn.softmax(v)
    abs | sqrt(x*x) -> numpy.abs(x)
    """
    return rewrite(expr)[1]


def stabilize(expr: Expr) -> Expr:
    """`expr` with every suggested rewrite applied (the formula to audit side by side).

    >>> from stablenn.audit._expr import parse
    >>> print(stabilize(parse("x - log(sum(exp(v))) + log(1 + y)")))
    x - logsumexp(v) + log1p(y)
    """
    return rewrite(expr)[0]


def rewrite(expr: Expr) -> tuple[Expr, list[Rewrite]]:
    """`stabilize` and `suggest` in one walk: the stable formula and the rewrites made."""
    walker = _Walker()
    return walker.visit(expr), walker.found


# ---------------------------------------------------------------- canonical polynomials
#
# Atom: ("var", name) | ("fn", name, (Poly, ...)) | ("inv", Poly) | ("pow", Poly, Poly)
#       | ("opaque", n)
# Mono: frozenset of (Atom, nonzero int power)
# Poly: frozenset of (Mono, nonzero Fraction coefficient)

Atom = tuple[Any, ...]
Mono = frozenset[tuple[Atom, int]]
Poly = frozenset[tuple[Mono, Fraction]]

_ONE: Mono = frozenset()
_MAX_TERMS = 256  # expansions beyond this many monomials are kept opaque
_MAX_EXPAND = 8  # (a + b)**n is expanded up to this n


class _TooBig(Exception):
    pass


def _poly(d: dict[Mono, Fraction]) -> Poly:
    return frozenset((m, c) for m, c in d.items() if c != 0)


def _const(c: Fraction | int) -> Poly:
    return _poly({_ONE: Fraction(c)})


def _atom(a: Atom, k: int = 1) -> Poly:
    return _poly({frozenset({(a, k)}): Fraction(1)})


def _add(*ps: Poly) -> Poly:
    d: dict[Mono, Fraction] = defaultdict(Fraction)
    for p in ps:
        for m, c in p:
            d[m] += c
    return _poly(d)


def _scale(p: Poly, c: Fraction | int) -> Poly:
    return _poly({m: k * c for m, k in p})


def _neg(p: Poly) -> Poly:
    return _scale(p, -1)


def _mono_mul(a: Mono, b: Mono) -> Mono:
    d = dict(a)
    for atom, k in b:
        d[atom] = d.get(atom, 0) + k
    return frozenset((atom, k) for atom, k in d.items() if k)


def _mul(p: Poly, q: Poly) -> Poly:
    if len(p) * len(q) > _MAX_TERMS:
        raise _TooBig
    d: dict[Mono, Fraction] = defaultdict(Fraction)
    for m1, c1 in p:
        for m2, c2 in q:
            d[_mono_mul(m1, m2)] += c1 * c2
    return _poly(d)


def _inv(p: Poly) -> Poly:
    if len(p) == 1:
        ((m, c),) = p
        return _poly({frozenset((a, -k) for a, k in m): 1 / c})
    return _atom(("inv", p))  # 1/(sum of terms); 1/0 stays an atom too


def _constant(p: Poly) -> Fraction | None:
    if not p:
        return Fraction(0)
    if len(p) == 1:
        ((m, c),) = p
        if m == _ONE:
            return c
    return None


def _power(p: Poly, q: Poly) -> Poly:
    n = _constant(q)
    if n is not None and n.denominator == 1 and abs(n) <= _MAX_EXPAND:
        k = int(n)
        base = p if k >= 0 else _inv(p)
        out = _const(1)
        for _ in range(abs(k)):
            out = _mul(out, base)
        return out
    if n is not None and n.denominator == 1 and len(p) == 1:
        ((m, c),) = p
        if c == 1:
            return _poly({frozenset((a, k * int(n)) for a, k in m): Fraction(1)})
    return _atom(("pow", p, q))


def _key(obj: Any) -> str:
    """A deterministic sort key (frozenset order varies with string hashing between runs)."""
    if isinstance(obj, frozenset):
        return "{" + ",".join(sorted(_key(i) for i in obj)) + "}"
    if isinstance(obj, tuple):
        return "(" + ",".join(_key(i) for i in obj) + ")"
    return repr(obj)


def _split_const(p: Poly) -> tuple[Fraction, Poly]:
    """(constant term, the other terms)."""
    c = Fraction(0)
    rest = {}
    for m, k in p:
        if m == _ONE:
            c = k
        else:
            rest[m] = k
    return c, _poly(rest)


def _single(p: Poly) -> tuple[Mono, Fraction] | None:
    if len(p) == 1:
        ((m, c),) = p
        return m, c
    return None


def _only_atom(p: Poly) -> Atom | None:
    """The atom if `p` is exactly one atom to the power 1 with coefficient 1."""
    s = _single(p)
    if s is None or s[1] != 1 or len(s[0]) != 1:
        return None
    ((a, k),) = s[0]
    return a if k == 1 else None


def _fn_arg(p: Poly, name: str) -> Poly | None:
    """W if `p` is exactly ``name(W)`` (a one-argument call)."""
    a = _only_atom(p)
    if a is not None and a[0] == "fn" and a[1] == name and len(a[2]) == 1:
        return a[2][0]
    return None


class _Canon:
    """Canonical polynomials of the nodes of a tree, memoised by node identity."""

    def __init__(self) -> None:
        self.cache: dict[int, tuple[Expr, Poly]] = {}
        self.opaque = 0

    def __call__(self, e: Expr) -> Poly:
        hit = self.cache.get(id(e))
        if hit is not None:
            return hit[1]
        try:
            p = self.build(e)
        except _TooBig:
            self.opaque += 1
            p = _atom(("opaque", self.opaque))
        self.cache[id(e)] = (e, p)  # keep e alive so that its id stays unique
        return p

    def build(self, e: Expr) -> Poly:
        if isinstance(e, Num):
            return _const(e.value)
        if isinstance(e, Var):
            return _atom(("var", e.name))
        if isinstance(e, Neg):
            return _neg(self(e.arg))
        if isinstance(e, Binary):
            a, b = self(e.left), self(e.right)
            if e.op == "+":
                return _add(a, b)
            if e.op == "-":
                return _add(a, _neg(b))
            if e.op == "*":
                return _mul(a, b)
            if e.op == "/":
                return _mul(a, _inv(b))
            return _power(a, b)
        assert isinstance(e, Call)
        args = tuple(self(a) for a in e.args)
        if e.name == "pow":
            return _power(args[0], args[1])
        if e.name in ("max", "min") and len(args) > 1:
            args = tuple(sorted(args, key=_key))  # max and min are symmetric
        return _atom(("fn", e.name, args))


# ---------------------------------------------------------------- back from polynomials


def _build(p: Poly) -> Expr:
    """An Expr of a polynomial (used when no node of the formula spells it)."""
    if not p:
        return number(0)
    terms = sorted(p, key=lambda mc: (sum(abs(k) for _, k in mc[0]), _key(mc[0])))
    out: Expr | None = None
    for m, c in terms:
        body = _build_mono(m)
        mag = abs(c)
        if body is None:
            term: Expr = number(mag)
        elif mag == 1:
            term = body
        else:
            term = Binary("*", number(mag), body)
        if out is None:
            out = term if c > 0 else Neg(term)
        else:
            out = Binary("+" if c > 0 else "-", out, term)
    assert out is not None
    return out


def _build_mono(m: Mono) -> Expr | None:
    num: list[Expr] = []
    den: list[Expr] = []
    for a, k in sorted(m, key=_key):
        if a[0] == "inv":
            base, k = _build(a[1]), -k
        else:
            base = _build_atom(a)
        target = num if k > 0 else den
        target.append(base if abs(k) == 1 else Binary("**", base, number(abs(k))))
    out: Expr | None = None
    for f in num:
        out = f if out is None else Binary("*", out, f)
    for f in den:
        out = Binary("/", number(1) if out is None else out, f)
    return out


def _build_atom(a: Atom) -> Expr:
    if a[0] == "var":
        return Var(a[1])
    if a[0] == "fn":
        return Call(a[1], tuple(_build(p) for p in a[2]))
    if a[0] == "pow":
        return Binary("**", _build(a[1]), _build(a[2]))
    raise _TooBig  # pragma: no cover - opaque atoms only come from nodes, found by origin


# ---------------------------------------------------------------- pattern helpers


def _exp_arg(p: Poly) -> Poly | None:
    return _fn_arg(p, "exp")


def _sig_arg(p: Poly, *, naive_only: bool = False) -> Poly | None:
    """W if `p` is exactly a sigmoid of W: ``sigmoid(W)``, ``1/(1 + exp(-W))`` or
    ``exp(W)/(1 + exp(W))``; with `naive_only`, not the ``sigmoid(W)`` call."""
    s = _single(p)
    if s is None or s[1] != 1:
        return None
    m = dict(s[0])
    if len(m) == 1:
        ((a, k),) = m.items()
        if k != 1:
            return None
        if a[0] == "fn" and a[1] == "sigmoid" and not naive_only:
            return a[2][0]
        if a[0] == "inv":
            c, rest = _split_const(a[1])
            u = _exp_arg(rest)
            if c == 1 and u is not None:
                return _neg(u)
        return None
    if len(m) == 2:
        exps = [a for a, k in m.items() if a[0] == "fn" and a[1] == "exp" and k == 1]
        invs = [a for a, k in m.items() if a[0] == "inv" and k == 1]
        if exps and invs:
            w = exps[0][2][0]
            c, rest = _split_const(invs[0][1])
            if c == 1 and _exp_arg(rest) == w:
                return w
    return None


def _complement_arg(p: Poly) -> Poly | None:
    """W if `p` is exactly ``1 - sigmoid(W)`` in any spelling (including ``sigmoid(-W)``)."""
    c, rest = _split_const(p)
    if c == 1:
        w = _sig_arg(_neg(rest))
        if w is not None:
            return w
    u = _sig_arg(p)
    return None if u is None else _neg(u)


def _log_sigmoid_arg(a: Atom) -> Poly | None:
    """U if the atom is ``log(sigmoid(U))`` in any spelling, or ``log_sigmoid(U)``."""
    if a[0] != "fn" or len(a[2]) != 1:
        return None
    if a[1] == "log_sigmoid":
        return a[2][0]
    if a[1] == "log":
        arg = a[2][0]
        w = _sig_arg(arg)
        if w is not None:
            return w
        w = _complement_arg(arg)
        if w is not None:
            return _neg(w)
    if a[1] == "log1p":
        w = _sig_arg(_neg(a[2][0]))
        if w is not None:
            return _neg(w)
    return None


def _shifted(v: Poly) -> bool:
    """Whether `v` is already ``u - max(u)``, the stable shift."""
    for m, c in v:
        if c != -1 or len(m) != 1:
            continue
        ((a, k),) = m
        if k == 1 and a[0] == "fn" and a[1] == "max" and len(a[2]) == 1:
            if _add(v, _atom(a)) == a[2][0]:
                return True
    return False


def _sum_exp_arg(p: Poly) -> Poly | None:
    """V if `p` is exactly ``sum(exp(V))`` (V not already shifted by its max)."""
    inner = _fn_arg(p, "sum")
    v = None if inner is None else _exp_arg(inner)
    return None if v is None or _shifted(v) else v


def _softmax_arg(p: Poly) -> tuple[Poly, Fraction] | None:
    """(V, c) if `p` is exactly ``c*exp(V)/sum(exp(V))``."""
    s = _single(p)
    if s is None or len(s[0]) != 2:
        return None
    m = dict(s[0])
    for a, k in m.items():
        if k == 1 and a[0] == "fn" and a[1] == "exp":
            v = a[2][0]
            total = ("fn", "sum", (_atom(a),))
            if m.get(total) == -1 and not _shifted(v):
                return v, s[1]
    return None


# ---------------------------------------------------------------- the rules


@dataclass(frozen=True)
class _Match:
    rule: str
    fn: str
    args: tuple[Poly, ...]
    coef: Fraction = Fraction(1)
    arg_nodes: tuple[Expr | None, ...] | None = None  # original nodes for the arguments


def _match_log_call(p: Poly) -> _Match | None:
    a = _only_atom(p)
    if a is None or a[0] != "fn" or a[1] not in ("log", "log1p"):
        return None
    arg = a[2][0]
    if a[1] == "log":
        v = _sum_exp_arg(arg)
        if v is not None:
            return _Match("logsumexp", "logsumexp", (v,))
        sm = _softmax_arg(arg)
        if sm is not None and sm[1] == 1:
            return _Match("log_softmax", "log_softmax", (sm[0],))
        v = _fn_arg(arg, "softmax")
        if v is not None:
            return _Match("log_softmax", "log_softmax", (v,))
        c, rest = _split_const(arg)
        w = _exp_arg(rest)
        if c == 1 and w is not None:
            return _Match("softplus", "softplus", (w,))
    else:
        w = _exp_arg(arg)
        if w is not None:
            return _Match("softplus", "softplus", (w,))
    u = _log_sigmoid_arg(a)
    if u is not None:
        return _Match("log_sigmoid", "log_sigmoid", (u,))
    if a[1] == "log":
        c, rest = _split_const(arg)
        if c == 1 and rest and _constant(rest) is None:
            return _Match("log1p", "log1p", (rest,))
    return None


def _match_bce(p: Poly) -> _Match | None:
    # p = A log(sigmoid(X)) + B log(sigmoid(-X)) with A + B = -1 is bce(X, -A);
    # with A + B = 1 it is -bce(X, A)
    logs: dict[Atom, Poly] = {}
    for m, _ in p:
        for a, k in m:
            if k == 1 and a not in logs:
                u = _log_sigmoid_arg(a)
                if u is not None:
                    logs[a] = u
    atoms = sorted(logs, key=_key)
    for i, j in combinations(range(len(atoms)), 2):
        l1, l2 = atoms[i], atoms[j]
        if logs[l2] != _neg(logs[l1]):
            continue
        parts = _linear_in(p, (l1, l2))
        if parts is None:
            continue
        a1, a2, rest = parts
        if rest:
            continue
        total = _constant(_add(a1, a2))
        if total not in (1, -1) or not a1 or not a2:
            continue
        # name the label after the sigmoid whose argument reads positively
        x, y_coef = (logs[l1], a1) if _positive(logs[l1]) >= _positive(logs[l2]) else (logs[l2], a2)
        if total == -1:
            return _Match("bce", "binary_cross_entropy_with_logits", (x, _neg(y_coef)))
        return _Match("bce", "binary_cross_entropy_with_logits", (x, y_coef), Fraction(-1))
    return None


def _positive(p: Poly) -> int:
    return sum(1 if c > 0 else -1 for _, c in p)


def _linear_in(p: Poly, atoms: tuple[Atom, ...]) -> tuple[Poly, Poly, Poly] | None:
    """Split `p` = a1*atoms[0] + a2*atoms[1] + rest, the atoms to the power 1 only."""
    parts: list[dict[Mono, Fraction]] = [{}, {}, {}]
    for m, c in p:
        hits = [i for i, a in enumerate(atoms) if any(b == a for b, _ in m)]
        if len(hits) > 1:
            return None
        if not hits:
            parts[2][m] = c
            continue
        i = hits[0]
        if dict(m)[atoms[i]] != 1:
            return None
        parts[i][frozenset((b, k) for b, k in m if b != atoms[i])] = c
    return _poly(parts[0]), _poly(parts[1]), _poly(parts[2])


def _match_log_softmax_sum(p: Poly) -> _Match | None:
    # p = c*(V - log(sum(exp(V))))
    for m, c in p:
        if len(m) != 1:
            continue
        ((a, k),) = m
        if k != 1 or a[0] != "fn" or a[1] != "log":
            continue
        v = _sum_exp_arg(a[2][0])
        if v is None:
            continue
        rest = _add(p, _poly({m: -c}))
        if rest == _scale(v, -c):
            return _Match("log_softmax", "log_softmax", (v,), -c)
    return None


def _match_softmax(p: Poly) -> _Match | None:
    sm = _softmax_arg(p)
    if sm is not None:
        return _Match("softmax", "softmax", (sm[0],), sm[1])
    return None


def _match_sigmoid_grad(p: Poly) -> _Match | None:
    # c*(s - s**2) with s a sigmoid of W, or c*sigmoid(W)*sigmoid(-W)
    if len(p) == 2:
        (m1, c1), (m2, c2) = sorted(p, key=lambda mc: (sum(abs(k) for _, k in mc[0]), _key(mc[0])))
        if c2 == -c1 and m2 == frozenset((a, 2 * k) for a, k in m1):
            w = _sig_arg(_poly({m1: Fraction(1)}))
            if w is not None:
                return _Match("sigmoid_grad", "sigmoid_grad", (w,), c1)
    s = _single(p)
    if s is not None and len(s[0]) == 2 and all(k == 1 for _, k in s[0]):
        (a, _), (b, _) = sorted(s[0], key=_key)
        if a[0] == b[0] == "fn" and a[1] == b[1] == "sigmoid" and b[2][0] == _neg(a[2][0]):
            w = a[2][0] if _positive(a[2][0]) >= _positive(b[2][0]) else b[2][0]
            return _Match("sigmoid_grad", "sigmoid_grad", (w,), s[1])
    return None


def _match_tanh_grad(p: Poly) -> _Match | None:
    # c*(1 - tanh(W)**2)
    c, rest = _split_const(p)
    s = _single(rest)
    if c == 0 or s is None or s[1] != -c or len(s[0]) != 1:
        return None
    ((a, k),) = s[0]
    if k == 2 and a[0] == "fn" and a[1] == "tanh":
        return _Match("tanh_grad", "tanh_grad", (a[2][0],), c)
    return None


def _match_sigmoid(p: Poly) -> _Match | None:
    # c*(naive sigmoid of W), or c*(1 - sigmoid(W)) = c*sigmoid(-W)
    s = _single(p)
    if s is not None:
        w = _sig_arg(_poly({s[0]: Fraction(1)}), naive_only=True)
        if w is not None:
            return _Match("sigmoid", "sigmoid", (w,), s[1])
    c, rest = _split_const(p)
    if c != 0:
        w = _sig_arg(_scale(rest, -1 / c))
        if w is not None:
            return _Match("sigmoid", "sigmoid", (_neg(w),), c)
    return None


def _match_expm1(p: Poly) -> _Match | None:
    # c*(exp(W) - 1)
    c, rest = _split_const(p)
    s = _single(rest)
    if c == 0 or s is None or s[1] != -c:
        return None
    w = _exp_arg(_poly({s[0]: Fraction(1)}))
    return None if w is None else _Match("expm1", "expm1", (w,), s[1])


def _match_abs(p: Poly, node: Expr | None, canon: _Canon) -> _Match | None:
    a = _only_atom(p)
    if a is None or a[0] != "fn" or a[1] != "sqrt":
        return None
    if isinstance(node, Call) and node.name == "sqrt":
        # sqrt(B**2), sqrt(pow(B, 2)), sqrt(B*B): |B| for any B, also a sum
        arg = node.args[0]
        base: Expr | None = None
        if isinstance(arg, Binary) and arg.op == "**" and canon(arg.right) == _const(2):
            base = arg.left
        elif isinstance(arg, Call) and arg.name == "pow" and canon(arg.args[1]) == _const(2):
            base = arg.args[0]
        elif isinstance(arg, Binary) and arg.op == "*" and canon(arg.left) == canon(arg.right):
            base = arg.left
        if base is not None:
            return _Match("abs", "abs", (canon(base),), arg_nodes=(base,))
    # sqrt(c * m**2) for a monomial m: sqrt(c) |m| when c is the square of a rational
    s = _single(a[2][0])
    if s is None or s[1] <= 0 or not s[0] or any(k % 2 for _, k in s[0]):
        return None
    root = _rational_sqrt(s[1])
    if root is None:
        return None
    half = _poly({frozenset((b, k // 2) for b, k in s[0]): Fraction(1)})
    return _Match("abs", "abs", (half,), root)


def _rational_sqrt(c: Fraction) -> Fraction | None:
    n, d = math.isqrt(c.numerator), math.isqrt(c.denominator)
    return Fraction(n, d) if n * n == c.numerator and d * d == c.denominator else None


_SUM_RULES: tuple[Callable[[Poly], _Match | None], ...] = (
    _match_bce,
    _match_log_softmax_sum,
    _match_sigmoid_grad,
    _match_tanh_grad,
    _match_expm1,
    _match_sigmoid,
)
_PRODUCT_RULES: tuple[Callable[[Poly], _Match | None], ...] = (
    _match_softmax,
    _match_sigmoid_grad,
    _match_sigmoid,
)


def _match(p: Poly, node: Expr | None, canon: _Canon) -> _Match | None:
    """The first rule matching all of `p` (rules about larger patterns first)."""
    for rule in (_match_bce, _match_log_softmax_sum, _match_log_call, _match_softmax):
        m = rule(p)
        if m is not None:
            return m
    for rule in (_match_sigmoid_grad, _match_tanh_grad, _match_sigmoid, _match_expm1):
        m = rule(p)
        if m is not None:
            return m
    return _match_abs(p, node, canon)


# ---------------------------------------------------------------- the walk


_Chain = list[tuple[Any, Expr]]  # (sign or is-denominator flag, node)
_MAX_CHAIN = 10  # sub-collections are searched in chains of at most this many members


def _flatten_sum(e: Expr, sign: int = 1) -> _Chain:
    if isinstance(e, Binary) and e.op in "+-":
        return _flatten_sum(e.left, sign) + _flatten_sum(e.right, sign if e.op == "+" else -sign)
    if isinstance(e, Neg) and isinstance(e.arg, Binary) and e.arg.op in "+-":
        return _flatten_sum(e.arg, -sign)
    return [(sign, e)]


def _flatten_product(e: Expr, den: bool = False) -> _Chain:
    if isinstance(e, Binary) and e.op in "*/":
        return _flatten_product(e.left, den) + _flatten_product(e.right, den if e.op == "*" else not den)
    return [(den, e)]


def _join_sum(chain: _Chain) -> Expr:
    out: Expr | None = None
    for sign, e in chain:
        if out is None:
            out = e if sign > 0 else Neg(e)
        else:
            out = Binary("+" if sign > 0 else "-", out, e)
    assert out is not None
    return out


def _join_product(chain: _Chain) -> Expr:
    out: Expr | None = None
    for den, e in chain:
        if out is None:
            out = Binary("/", number(1), e) if den else e
        else:
            out = Binary("/" if den else "*", out, e)
    assert out is not None
    return out


class _Walker:
    def __init__(self) -> None:
        self.canon = _Canon()
        self.found: list[Rewrite] = []

    def visit(self, e: Expr) -> Expr:
        m = _match(self.canon(e), e, self.canon)
        if m is not None:
            return self.apply(m, e, [e])
        if isinstance(e, Binary) and e.op in "+-" or isinstance(e, Neg) and isinstance(e.arg, Binary) and e.arg.op in "+-":
            out = self.chain(_flatten_sum(e), self.sum_poly, _SUM_RULES, _join_sum, sign=True)
            if out is not None:
                return out
        if isinstance(e, Binary) and e.op in "*/":
            out = self.chain(_flatten_product(e), self.product_poly, _PRODUCT_RULES, _join_product, sign=False)
            if out is not None:
                return out
        return self.rebuild(e)

    def rebuild(self, e: Expr) -> Expr:
        if isinstance(e, Neg):
            arg = self.visit(e.arg)
            return e if arg is e.arg else Neg(arg, e.pos)
        if isinstance(e, Binary):
            left, right = self.visit(e.left), self.visit(e.right)
            return e if (left is e.left and right is e.right) else Binary(e.op, left, right, e.pos)
        if isinstance(e, Call):
            args = tuple(self.visit(a) for a in e.args)
            return e if all(a is b for a, b in zip(args, e.args)) else Call(e.name, args, e.pos)
        return e

    def sum_poly(self, chain: _Chain) -> Poly:
        return _add(*(_scale(self.canon(t), s) for s, t in chain))

    def product_poly(self, chain: _Chain) -> Poly:
        out = _const(1)
        for den, t in chain:
            p = self.canon(t)
            out = _mul(out, _inv(p) if den else p)
        return out

    def chain(
        self,
        chain: _Chain,
        poly_of: Callable[[_Chain], Poly],
        rules: Sequence[Callable[[Poly], _Match | None]],
        join: Callable[[_Chain], Expr],
        *,
        sign: bool,
    ) -> Expr | None:
        """Rules tried on sub-collections of a chain of terms (or factors), largest first."""
        k = len(chain)
        if k < 2 or k > _MAX_CHAIN:
            return None
        replaced: dict[int, Expr] = {}
        used: set[int] = set()
        # a single term is a node of its own (visited later); a single denominator is not
        smallest = 2 if sign else 1
        for size in range(k - 1, smallest - 1, -1):
            for idx in combinations(range(k), size):
                if used.intersection(idx) or (size == 1 and not chain[idx[0]][0]):
                    continue
                part = [chain[i] for i in idx]
                try:
                    p = poly_of(part)
                except _TooBig:
                    continue
                for rule in rules:
                    m = rule(p)
                    if m is not None:
                        replaced[idx[0]] = self.apply(m, join(part), [t for _, t in part])
                        used.update(idx)
                        break
        if not replaced:
            return None
        out: _Chain = []
        for i in range(k):
            if i in replaced:
                out.append((1 if sign else False, replaced[i]))
            elif i not in used:
                flag, t = chain[i]
                out.append((flag, self.visit(t)))
        return join(out)

    def apply(self, m: _Match, before: Expr, sources: list[Expr]) -> Expr:
        slot = len(self.found)  # outer rewrites are listed before those in their arguments
        self.found.append(None)  # type: ignore[arg-type]
        origin = self.origins(sources)
        nodes = m.arg_nodes or tuple(None for _ in m.args)
        args = []
        for p, node in zip(m.args, nodes):
            arg = node if node is not None else origin.get(p)
            if arg is None:
                arg = _build(p)
            args.append(self.visit(arg))  # the arguments may hold rewrites of their own
        after = _scaled(m.coef, Call(m.fn, tuple(args)))
        self.found[slot] = Rewrite(m.rule, before, after, python_text(after), RULES[m.rule])
        return after

    def origins(self, sources: list[Expr]) -> dict[Poly, Expr]:
        """Canonical polynomial -> the first node of the sources that spells it."""
        out: dict[Poly, Expr] = {}
        stack = list(reversed(sources))
        while stack:
            e = stack.pop()
            out.setdefault(self.canon(e), e)
            if isinstance(e, Neg):
                stack.append(e.arg)
            elif isinstance(e, Binary):
                stack.extend((e.right, e.left))
            elif isinstance(e, Call):
                stack.extend(reversed(e.args))
        return out


def _scaled(c: Fraction, e: Expr) -> Expr:
    if c == 1:
        return e
    if c == -1:
        return Neg(e)
    if c < 0:
        return Neg(Binary("*", number(-c), e))
    return Binary("*", number(c), e)


# ---------------------------------------------------------------- Python text


_STABLENN = frozenset(
    {
        "sigmoid",
        "softplus",
        "log_sigmoid",
        "sigmoid_grad",
        "tanh_grad",
        "logsumexp",
        "softmax",
        "log_softmax",
        "binary_cross_entropy_with_logits",
    }
)


def python_text(e: Expr) -> str:
    """Python source for `e` with NumPy and stablenn (batch along the leading axes).

    >>> from stablenn.audit._expr import parse
    >>> python_text(parse("logsumexp(v) - max(v) + sum(v)*binary_cross_entropy_with_logits(x, y)"))
    'stablenn.logsumexp(v, axis=-1) - numpy.max(v, axis=-1) + numpy.sum(v, axis=-1)*stablenn.binary_cross_entropy_with_logits(x, y, reduction="none")'
    """
    return _text(e)


def _text(e: Expr) -> str:
    from stablenn.audit._expr import _NEG_PREC, _PREC, _prec

    if isinstance(e, Num):
        return e.text
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Call):
        args = [_text(a) for a in e.args]
        if e.name in _STABLENN:
            extra = {"logsumexp": ["axis=-1"], "binary_cross_entropy_with_logits": ['reduction="none"']}
            return f"stablenn.{e.name}({', '.join(args + extra.get(e.name, []))})"
        if e.name in ("max", "min", "sum") and len(args) == 1:
            return f"numpy.{e.name}({args[0]}, axis=-1)"
        if e.name in ("max", "min"):
            out = args[0]
            for a in args[1:]:
                out = f"numpy.{e.name}imum({out}, {a})"
            return out
        if e.name == "pow":
            return f"numpy.power({args[0]}, {args[1]})"
        return f"numpy.{e.name}({', '.join(args)})"
    if isinstance(e, Neg):
        inner = _text(e.arg)
        return f"-({inner})" if _prec(e.arg) < _NEG_PREC else f"-{inner}"
    assert isinstance(e, Binary)
    p = _PREC[e.op]
    left, right = _text(e.left), _text(e.right)
    if e.op == "**":
        if _prec(e.left) <= p:
            left = f"({left})"
        if _prec(e.right) < _NEG_PREC:
            right = f"({right})"
        return f"{left}**{right}"
    if _prec(e.left) < p:
        left = f"({left})"
    if _prec(e.right) <= p:
        right = f"({right})"
    return f"{left} {e.op} {right}" if p == 1 else f"{left}{e.op}{right}"

