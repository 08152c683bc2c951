"""Rewrite rules of the audit: each is an identity of real functions, and an improvement.

Truth: SymPy proves that the rewritten formula equals the original (with stablenn's
primitives written both by their definitions and by the stable formulas stablenn
evaluates), mpmath at 100 digits confirms it at random points, and mpmath intervals give
the exact values against which the float64 accuracy of both forms is measured.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

from stablenn.audit._expr import (
    evaluate_exact,
    evaluate_mpmath,
    evaluate_numpy,
    parse,
    to_sympy,
    variables,
    vector_variables,
)
from stablenn.audit._rewrites import RULES, python_text, rewrite, stabilize, suggest
from stablenn.audit._ulp import ulp_distance

# (rule, a spelling of the unstable pattern, the stable formula suggested)
CASES = [
    ("softplus", "log(1 + exp(x))", "softplus(x)"),
    ("softplus", "log(exp(x) + 1)", "softplus(x)"),
    ("softplus", "log1p(exp(x))", "softplus(x)"),
    ("softplus", "log(1 + exp(-x))", "softplus(-x)"),
    ("softplus", "x*y - log1p(exp(x))", "x*y - softplus(x)"),
    ("logsumexp", "log(sum(exp(v)))", "logsumexp(v)"),
    ("logsumexp", "x - log(sum(exp(v)))", "x - logsumexp(v)"),
    ("softmax", "exp(v)/sum(exp(v))", "softmax(v)"),
    ("softmax", "exp(v)*(1/sum(exp(v)))", "softmax(v)"),
    ("softmax", "y*exp(v)/sum(exp(v))", "y*softmax(v)"),
    ("log_softmax", "v - log(sum(exp(v)))", "log_softmax(v)"),
    ("log_softmax", "-log(sum(exp(v))) + v", "log_softmax(v)"),
    ("log_softmax", "log(exp(v)/sum(exp(v)))", "log_softmax(v)"),
    ("log_softmax", "log(softmax(v))", "log_softmax(v)"),
    ("sigmoid", "1/(1 + exp(-x))", "sigmoid(x)"),
    ("sigmoid", "1/(exp(-x) + 1)", "sigmoid(x)"),
    ("sigmoid", "exp(x)/(1 + exp(x))", "sigmoid(x)"),
    ("sigmoid", "1 - 1/(1 + exp(-x))", "sigmoid(-x)"),
    ("sigmoid", "1 - sigmoid(x)", "sigmoid(-x)"),
    ("sigmoid", "y/(1 + exp(-x))", "y*sigmoid(x)"),
    ("log_sigmoid", "log(1/(1 + exp(-x)))", "log_sigmoid(x)"),
    ("log_sigmoid", "log(sigmoid(x))", "log_sigmoid(x)"),
    ("log_sigmoid", "log(exp(x)/(1 + exp(x)))", "log_sigmoid(x)"),
    ("log_sigmoid", "log(1 - sigmoid(x))", "log_sigmoid(-x)"),
    ("bce", "-(y*log(sigmoid(x)) + (1 - y)*log(1 - sigmoid(x)))", "binary_cross_entropy_with_logits(x, y)"),
    (
        "bce",
        "-(y*log(1/(1 + exp(-x))) + (1 - y)*log(1 - 1/(1 + exp(-x))))",
        "binary_cross_entropy_with_logits(x, y)",
    ),
    (
        "bce",
        "-(y*log(exp(x)/(1 + exp(x))) + (1 - y)*log(1 - exp(x)/(1 + exp(x))))",
        "binary_cross_entropy_with_logits(x, y)",
    ),
    ("bce", "-y*log(sigmoid(x)) - (1 - y)*log(1 - sigmoid(x))", "binary_cross_entropy_with_logits(x, y)"),
    ("bce", "(y - 1)*log(1 - sigmoid(x)) - y*log(sigmoid(x))", "binary_cross_entropy_with_logits(x, y)"),
    ("bce", "y*log(sigmoid(x)) + (1 - y)*log(1 - sigmoid(x))", "-binary_cross_entropy_with_logits(x, y)"),
    ("bce", "a - y*log(sigmoid(x)) - (1 - y)*log(1 - sigmoid(x))", "a + binary_cross_entropy_with_logits(x, y)"),
    ("sigmoid_grad", "sigmoid(x)*(1 - sigmoid(x))", "sigmoid_grad(x)"),
    ("sigmoid_grad", "(1 - sigmoid(x))*sigmoid(x)", "sigmoid_grad(x)"),
    ("sigmoid_grad", "1/(1 + exp(-x))*(1 - 1/(1 + exp(-x)))", "sigmoid_grad(x)"),
    ("sigmoid_grad", "sigmoid(x)*sigmoid(-x)", "sigmoid_grad(x)"),
    ("sigmoid_grad", "sigmoid(x) - sigmoid(x)**2", "sigmoid_grad(x)"),
    ("sigmoid_grad", "g*sigmoid(x)*(1 - sigmoid(x))", "g*sigmoid_grad(x)"),
    ("tanh_grad", "1 - tanh(x)**2", "tanh_grad(x)"),
    ("tanh_grad", "1 - tanh(x)*tanh(x)", "tanh_grad(x)"),
    ("tanh_grad", "1 - pow(tanh(x), 2)", "tanh_grad(x)"),
    ("tanh_grad", "(1 - tanh(x))*(1 + tanh(x))", "tanh_grad(x)"),
    ("log1p", "log(1 + x)", "log1p(x)"),
    ("log1p", "log(x + 1)", "log1p(x)"),
    ("log1p", "log(1 - x*y)", "log1p(-(x*y))"),
    ("expm1", "exp(x) - 1", "expm1(x)"),
    ("expm1", "-1 + exp(x)", "expm1(x)"),
    ("expm1", "1 - exp(x)", "-expm1(x)"),
    ("expm1", "a + exp(x) - 1", "a + expm1(x)"),
    ("abs", "sqrt(x**2)", "abs(x)"),
    ("abs", "sqrt(x*x)", "abs(x)"),
    ("abs", "sqrt(pow(x, 2))", "abs(x)"),
    ("abs", "sqrt((x - y)**2)", "abs(x - y)"),
    ("abs", "sqrt(4*x**2)", "2*abs(x)"),
]
_IDS = [c[1] for c in CASES]


def test_every_rule_has_cases() -> None:
    assert {c[0] for c in CASES} == set(RULES)


@pytest.mark.parametrize(("rule", "text", "stable"), CASES, ids=_IDS)
def test_rule_matches_spelling(rule: str, text: str, stable: str) -> None:
    tree = parse(text)
    new, found = rewrite(tree)
    assert str(new) == stable
    assert [r.rule for r in found] == [rule]
    r = found[0]
    assert r.why == RULES[rule]
    assert r.call == python_text(r.after)
    # the stable form is a fixed point: nothing left to suggest
    assert suggest(new) == []
    # the suggested formula reads back through the parser
    assert parse(str(new)) == new


# ---------------------------------------------------------------- SymPy: the identities


def _is_zero(d: sympy.Expr) -> bool:
    """Whether SymPy reduces `d` to 0 (no `force=True`: every step respects the assumptions)."""
    if d == 0:
        return True
    attempts = (
        sympy.simplify,
        lambda e: sympy.simplify(sympy.expand_log(e)),
        lambda e: sympy.simplify(sympy.expand_log(sympy.expand(e)).rewrite(sympy.exp)),
        lambda e: sympy.simplify(sympy.logcombine(e)),
    )
    return any(f(d) == 0 for f in attempts)


def _pairs(text: str, primitives: str) -> tuple[list[sympy.Expr], list[sympy.Expr], list[sympy.Symbol]]:
    tree = parse(text)
    stable = stabilize(tree)
    symbols = {n: sympy.Symbol(n, real=True) for n in variables(tree) if n not in vector_variables(tree)}
    a = to_sympy(tree, symbols, primitives=primitives)
    b = to_sympy(stable, symbols, primitives=primitives)
    a_list = list(a) if isinstance(a, tuple) else [a]
    b_list = list(b) if isinstance(b, tuple) else [b]
    return a_list, b_list, list(symbols.values())


@pytest.mark.parametrize(("rule", "text", "stable"), CASES, ids=_IDS)
def test_identity_with_primitives_by_definition(rule: str, text: str, stable: str) -> None:
    # softplus(x) = log(1 + exp(x)), logsumexp(v) = log(sum(exp(v))), ...: this proves the
    # matcher extracted the right arguments (x, y, v) from the spelling
    a, b, _ = _pairs(text, "definition")
    assert all(_is_zero(p - q) for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize(("rule", "text", "stable"), CASES, ids=_IDS)
def test_identity_with_the_stable_formulas(rule: str, text: str, stable: str) -> None:
    # the primitives as stablenn evaluates them (max(x, 0) + log1p(exp(-|x|)), shifts by the
    # largest component...).  |x|, max and min are piecewise: the check splits each scalar
    # variable under them into x > 0, x < 0 and x = 0 (SymPy then removes Abs/Max/Min).
    # The vector shift m = Max(v) needs no split: it cancels for every real m.
    a, b, scalars = _pairs(text, "stable")
    piecewise = set()
    for e in b:
        for f in e.atoms(sympy.Abs, sympy.Max, sympy.Min, sympy.Piecewise):
            piecewise |= f.free_symbols
    split = [s for s in scalars if s in piecewise]
    cases = [{}]
    for s in split:
        p = sympy.Symbol(f"{s.name}_pos", positive=True)
        cases = [{**c, s: value} for c in cases for value in (p, -p, sympy.Integer(0))]
    for case in cases:
        for p, q in zip(a, b, strict=True):
            assert _is_zero((p - q).subs(case)), (text, case)


@pytest.mark.parametrize(("rule", "text", "stable"), CASES, ids=_IDS)
def test_identity_at_random_points_with_100_digits(rule: str, text: str, stable: str) -> None:
    tree = parse(text)
    new = stabilize(tree)
    vecs = set(vector_variables(tree))
    rng = np.random.default_rng(sum(map(ord, text)))
    for _ in range(25):
        point: dict[str, object] = {}
        for n in variables(tree):
            if n in vecs:
                point[n] = list(rng.uniform(-20, 20, size=3))
            elif n == "y":
                point[n] = float(rng.uniform(0, 1))  # a label
            else:
                point[n] = float(rng.uniform(-20, 20))
        got = evaluate_mpmath(tree, point, prec=340)  # 340 bits: over 100 digits
        want = evaluate_mpmath(new, point, prec=340)
        got_l = got if isinstance(got, list) else [got]
        want_l = want if isinstance(want, list) else [want]
        for g, w in zip(got_l, want_l, strict=True):
            if math.isnan(float(w)):
                assert math.isnan(float(g)), (text, point)  # both undefined (log of a negative)
                continue
            # the naive form evaluated at 100 digits may cancel up to ~40 of them here
            assert abs(g - w) <= 1e-60 * max(abs(w), 1e-300), (text, point, g, w)


# ---------------------------------------------------------------- float64: more accurate


# (formula, a point where the formula breaks in float64)
BREAKS = [
    ("log(1 + exp(x))", {"x": -40.0}),  # 1 + exp(-40) rounds to 1: 0 instead of 4.2e-18
    ("log(1 + exp(x))", {"x": 800.0}),  # exp overflows: inf
    ("log(sum(exp(v)))", {"v": [1000.0, 999.0, 0.0]}),  # inf
    ("log(sum(exp(v)))", {"v": [-1000.0, -1001.0, -1002.0]}),  # every term underflows: -inf
    ("exp(v)/sum(exp(v))", {"v": [1000.0, 0.0, -5.0]}),  # inf/inf = NaN
    ("v - log(sum(exp(v)))", {"v": [0.0, -50.0, -60.0]}),  # dominant entry returned as 0
    ("1/(1 + exp(-x))", {"x": -740.0}),  # exp(740) overflows: 0 instead of 4.2e-322
    ("exp(x)/(1 + exp(x))", {"x": 710.0}),  # inf/inf = NaN
    ("1 - sigmoid(x)", {"x": 40.0}),  # cancels to 0
    ("log(1/(1 + exp(-x)))", {"x": -800.0}),  # log(0) = -inf instead of -800
    ("log(1/(1 + exp(-x)))", {"x": 40.0}),  # 0 instead of -4.2e-18
    ("-(y*log(sigmoid(x)) + (1 - y)*log(1 - sigmoid(x)))", {"x": 40.0, "y": 0.0}),  # log(1 - 1): inf
    ("-(y*log(sigmoid(x)) + (1 - y)*log(1 - sigmoid(x)))", {"x": 20.0, "y": 0.75}),  # 1 - s cancels: 4e6 ULP
    ("sigmoid(x)*(1 - sigmoid(x))", {"x": 40.0}),  # 0 instead of 4.2e-18
    ("1 - tanh(x)**2", {"x": 20.0}),  # 0 instead of 1.7e-17
    ("log(1 + x)", {"x": 1e-20}),  # 0
    ("exp(x) - 1", {"x": 1e-20}),  # 0
    ("sqrt(x**2)", {"x": 1e200}),  # x**2 overflows: inf
    ("sqrt(x**2)", {"x": -1e-200}),  # x**2 underflows: 0
]


@pytest.mark.parametrize(("text", "point"), BREAKS, ids=[f"{t} at {p}" for t, p in BREAKS])
def test_rewrite_is_more_accurate_in_float64(text: str, point: dict[str, object]) -> None:
    tree = parse(text)
    new = stabilize(tree)
    assert new != tree
    exact = evaluate_exact(tree, point, "float64")  # mpmath intervals, correctly rounded
    exact_l = np.ravel(np.array(exact, dtype=np.float64))
    arrays = {k: np.array([val], dtype=np.float64) for k, val in point.items()}
    naive = np.ravel(evaluate_numpy(tree, arrays, "float64"))
    stable = np.ravel(evaluate_numpy(new, arrays, "float64"))
    assert np.isfinite(exact_l).all()
    # the original breaks somewhere: a non-finite result, every digit lost (relative error at
    # least 1/2), or at least 20 of the 53 bits lost (2**20 ULP)
    with np.errstate(all="ignore"):
        rel = np.abs(naive - exact_l) / np.abs(exact_l)
    lost = ulp_distance(naive, exact_l, "float64")
    assert (~np.isfinite(naive) | (rel >= 0.5) | (lost >= 2**20)).any(), (naive, exact_l)
    # the suggestion is within 2 ULP of the exact value everywhere
    assert ulp_distance(stable, exact_l, "float64").max() <= 2, (stable, exact_l)


def test_every_rule_is_shown_to_improve_accuracy() -> None:
    rules = set()
    for text, _ in BREAKS:
        rules.update(r.rule for r in suggest(parse(text)))
    assert rules == set(RULES)


# ---------------------------------------------------------------- behaviour of the walk


def test_outermost_first_and_arguments_rewritten() -> None:
    found = suggest(parse("log(1 + exp(log(1 + x)))"))
    assert [(r.rule, str(r.before), r.call) for r in found] == [
        ("softplus", "log(1 + exp(log(1 + x)))", "stablenn.softplus(numpy.log1p(x))"),
        ("log1p", "log(1 + x)", "numpy.log1p(x)"),
    ]


def test_disjoint_matches_all_reported() -> None:
    found = suggest(parse("log(1 + exp(x)) + sqrt(y*y) + exp(v)/sum(exp(v))"))
    assert [r.rule for r in found] == ["softplus", "abs", "softmax"]
    assert str(stabilize(parse("log(1 + exp(x)) + sqrt(y*y) + exp(v)/sum(exp(v))"))) == (
        "softplus(x) + abs(y) + softmax(v)"
    )


def test_bce_inside_a_mean_keeps_the_rest_as_written() -> None:
    text = "sum(-(y*log(sigmoid(x)) + (1 - y)*log(1 - sigmoid(x))))/3 + 0.5*w*w"
    assert str(stabilize(parse(text))) == "sum(binary_cross_entropy_with_logits(x, y))/3 + 0.5*w*w"


def test_match_inside_a_chain_reports_only_its_terms() -> None:
    (r,) = suggest(parse("a + exp(x) - b - 1"))
    assert r.rule == "expm1"
    assert str(r.before) == "exp(x) - 1"
    assert str(stabilize(parse("a + exp(x) - b - 1"))) == "a + expm1(x) - b"


@pytest.mark.parametrize(
    "text",
    [
        "softplus(x)",
        "log(sum(exp(v - max(v)))) + max(v)",  # already shifted: stable as written
        "exp(v - max(v))/sum(exp(v - max(v)))",
        "log(2 + exp(x))",
        "exp(x) + 1",
        "log(1 + 2)",
        "sqrt(x)",
        "sqrt(x**3)",
        "s*(1 - s)",  # s is a variable, not a sigmoid
        "2 - tanh(x)**2",
        "x*y + 1",
        "log(x)",
    ],
)
def test_no_suggestion(text: str) -> None:
    assert suggest(parse(text)) == []
    assert stabilize(parse(text)) == parse(text)


def test_python_text_names_what_to_call() -> None:
    assert python_text(parse("2*binary_cross_entropy_with_logits(x, y)")) == (
        '2*stablenn.binary_cross_entropy_with_logits(x, y, reduction="none")'
    )
    assert python_text(parse("max(x, y, 0) + pow(x, 2)")) == "numpy.maximum(numpy.maximum(x, y), 0) + numpy.power(x, 2)"
    assert python_text(parse("-(x + y)**2")) == "-(x + y)**2"
