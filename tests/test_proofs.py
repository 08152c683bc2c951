"""Tests of stablenn.proofs and ``stablenn prove``.

Truth here is SymPy (identities) and mpmath (numbers), never stablenn: each proof is
checked by both, and deliberately broken proofs (the exercise sheet's own wrong steps
among them) must be refused.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import xml.dom.minidom
from fractions import Fraction

import mpmath
import pytest
import sympy
from sympy import Abs, Derivative, Eq, IndexedBase, Interval, Max, S, Sum, Symbol, exp, log, tanh

from stablenn import proofs
from stablenn.proofs import _catalogue, _check, _cli, _core
from stablenn.proofs._catalogue import add, frac, mul, neg
from stablenn.proofs._functions import log1p, sigma, softplus
from stablenn.proofs._render import mathml, to_ascii, unicode_line
from stablenn.proofs._sheet import sheet_bce

Assumption, Certificate, Part, Proof, Step = (
    proofs.Assumption, proofs.Certificate, proofs.Part, proofs.Proof, proofs.Step,
)

x = Symbol("x", real=True)
y = Symbol("y", real=True)
REAL_X = Assumption(x, S.Reals)
LABEL = Assumption(y, Interval(0, 1))


@pytest.fixture(scope="module")
def results() -> dict[str, proofs.ProofResult]:
    """Every proof built and verified once (the slow part of this file, ~10 s)."""
    return {r.proof.name: r for r in proofs.verify_all()}


def chain(name: str, statement: Eq, steps: list[tuple[object, str]], assumptions=(REAL_X,), **part) -> Proof:
    return Proof(name, name, "test", statement, list(assumptions), [Part("", [Step(e, r) for e, r in steps], **part)])


# ------------------------------------------------------------------ the catalogue
@pytest.mark.parametrize("name", proofs.names())
def test_every_proof_verifies(results, name):
    result = results[name]
    assert result.ok, result.summary()
    assert all(r.symbolic and r.numeric for r in result.steps)
    assert len(result.steps) == len(result.proof.steps) >= 2


def test_index_matches_catalogue(results):
    assert proofs.names() == tuple(_catalogue.BUILDERS)
    for name, problem, title in proofs.index():
        proof = results[name].proof
        assert (proof.name, proof.problem, proof.title) == (name, problem, title)


def test_issue_items_are_all_proved():
    wanted = {
        "Problem 1": {"affine-composition", "affine-network-depth", "xor-not-affine"},
        "Problem 2": {"sigmoid-tanh", "sigmoid-layer-as-tanh", "tanh-layer-as-sigmoid"},
        "Problem 3": {"tanh-derivative", "sigmoid-derivative", "sigmoid-derivative-from-input", "tanh-derivative-from-input"},
        "Problem 4": {"logsumexp-shift"},
        "Problem 5": {"softmax-shift"},
        "Problem 6": {"bce-logits"},
        "Stable forms": {"softplus-stable", "log-sigmoid", "sigmoid-two-branch", "logsumexp-dominant", "bce-stablenn", "bce-problem-6-form"},
    }
    have: dict[str, set[str]] = {}
    for name, problem, _ in proofs.index():
        have.setdefault(problem, set()).add(name)
    for problem, names in wanted.items():
        assert names <= have[problem], problem


def test_problem_6_is_split_at_zero(results):
    parts = results["bce-logits"].proof.parts
    assert [p.condition for p in parts] == [sympy.Ge(x, 0), sympy.Lt(x, 0)]


def test_induction_has_base_and_step_with_hypothesis(results):
    base, step = results["affine-network-depth"].proof.parts
    assert "base" in base.title and "induction" in step.title
    assert [g.kind for g in step.givens].count("hypothesis") == 1


def test_logsumexp_is_for_symbolic_n(results):
    (total,) = results["logsumexp-shift"].proof.statement.lhs.atoms(Sum)
    upper = total.limits[0][2]
    assert isinstance(upper, Symbol) and upper.is_integer and upper.is_positive


def test_sigmoid_derivative_cannot_be_asserted_by_sympy():
    # σ is opaque to SymPy: d/dx σ(x) stays unevaluated, so sigma-derivative must derive it
    assert isinstance(Derivative(sigma(x), x).doit(), Derivative)
    assert isinstance(Derivative(softplus(x), x).doit(), Derivative)


def test_symbolic_methods_are_reported(results):
    methods = {r.method for res in results.values() for r in res.steps}
    assert any(m.startswith("cases") for m in methods)  # |x|, max: split on the sign
    assert any("term by term" in m for m in methods)  # layer rewrites: summand by summand


def test_xor_certificate_is_exact(results):
    proof = results["xor-not-affine"].proof
    assert isinstance(proof, Certificate)
    assert all(isinstance(m, int) and m >= 0 for m in proof.multipliers)
    total = sympy.expand(sum(m * c[0].lhs for m, c in zip(proof.multipliers, proof.constraints)))
    assert total == 0  # the combination is identically 0: 0 > 0, a contradiction


# ------------------------------------------------------------------ broken proofs are refused
E = exp(x)


def test_sheet_bce_with_e_to_the_2x_is_refused():
    result = sheet_bce(exp(2 * x)).verify()
    assert not result.ok
    # line 1 is the definition; each of the sheet's three lines after it is wrong
    assert [r.index for r in result.failures] == [1, 2, 3]
    assert all(not r.symbolic and not r.numeric for r in result.failures)
    assert "SymPy could not show" in result.failures[0].reason
    assert "previous line is" in result.failures[0].reason


def test_sheet_bce_has_a_second_mistake():
    # with e^{-x} in place of e^{2x}, line 2 still has the copied 1/(1 + e^{-x}) where
    # 1 − σ(x) = e^{-x}/(1 + e^{-x}) belongs, so line 2 and the step to line 3 fail
    assert [r.index for r in sheet_bce(exp(-x)).verify().failures] == [1, 2]


def test_sheet_bce_corrected_verifies():
    assert sheet_bce(exp(-x), copied_term=False).verify().ok


def test_sheet_attempts_are_each_refused_where_the_sheet_goes_wrong():
    tanh_def, tanh_prime, bce = (p.verify() for p in proofs.sheet_attempts())
    assert [r.index for r in tanh_def.failures] == [1]  # (e^x - e^x)/(e^x + e^x) is 0
    assert [r.index for r in tanh_prime.failures] == [2]  # its first line 1 - tanh^2 is right
    assert [r.index for r in bce.failures] == [1, 2, 3]
    assert unicode_line(tanh_def.proof.steps[1].expr) == "(eˣ − eˣ)/(eˣ + eˣ)"  # as written


def test_sheet_tanh_written_locally_is_refused():
    wrong = frac(add(E, neg(E)), add(E, E))
    proof = chain("sheet-tanh", Eq(tanh(x), wrong, evaluate=False), [(tanh(x), "lhs"), (wrong, "sheet's definition")])
    (failure,) = proof.verify().failures
    assert failure.index == 1 and "is 0.0" in failure.reason


def test_softplus_without_abs_is_refused_for_negative_x():
    wrong = add(Max(x, 0), log1p(exp(-x)))
    proof = chain("no-abs", Eq(softplus(x), wrong, evaluate=False), [(softplus(x), "lhs"), (wrong, "forgot |x|")])
    (failure,) = proof.verify().failures
    assert not failure.symbolic and not failure.numeric
    assert "x = -" in failure.reason  # the counterexample is a negative x


def test_log_of_product_needs_positive_factors():
    a, b = sympy.symbols("a b", real=True)
    proof = Proof(
        "log-product", "", "test", Eq(log(a * b), log(a) + log(b), evaluate=False),
        [Assumption(a, S.Reals), Assumption(b, S.Reals)],
        [Part("", [Step(log(a * b), "lhs"), Step(log(a) + log(b), "log(uv) = log u + log v, wrongly for any reals")])],
    )
    (failure,) = proof.verify().failures
    assert not failure.symbolic and not failure.numeric
    positive = Proof(
        "log-product-positive", "", "test", proof.statement,
        [Assumption(a, Interval.open(0, S.Infinity)), Assumption(b, Interval.open(0, S.Infinity))],
        proof.parts,
    )
    assert positive.verify().ok


def test_true_step_sympy_cannot_show_is_not_passed_on_numbers_alone():
    # reversing a sum's order is true (mpmath agrees) but beyond the checker's rewrites
    N, i = Symbol("N", integer=True, positive=True), Symbol("i", integer=True)
    xs = IndexedBase("x", real=True)
    fwd, back = Sum(xs[i], (i, 1, N)), Sum(xs[N + 1 - i], (i, 1, N))
    proof = Proof(
        "reversed", "", "test", Eq(fwd, back, evaluate=False),
        [Assumption(N, S.Naturals), Assumption(xs, S.Reals)],
        [Part("", [Step(fwd, "lhs"), Step(back, "reverse the order")])],
    )
    (failure,) = proof.verify().failures
    assert failure.numeric and not failure.symbolic
    assert "SymPy could not show" in failure.reason


def test_numeric_check_catches_what_a_wrong_sympy_would_pass(monkeypatch):
    monkeypatch.setattr(_core, "symbolic_equal", lambda a, b, **kw: _check.SymbolicOutcome(True, "always"))
    result = sheet_bce(exp(2 * x)).verify()
    assert [r.index for r in result.failures] == [1, 2, 3]
    assert all(r.symbolic and not r.numeric for r in result.failures)


def test_sympy_check_catches_what_unlucky_points_would_pass(monkeypatch):
    always = _check.NumericOutcome(True, 0.0)
    monkeypatch.setattr(_check.NumericCheck, "compare", lambda self, a, b: always)
    result = sheet_bce(exp(2 * x)).verify()
    assert [r.index for r in result.failures] == [1, 2, 3]
    assert all(r.numeric and not r.symbolic for r in result.failures)


def test_chain_must_start_and_end_at_the_claim():
    good = frac(1, add(1, exp(-x)))
    wrong_end = chain("end", Eq(sigma(x), sigma(-x), evaluate=False), [(sigma(x), "lhs"), (good, "definition")])
    (failure,) = wrong_end.verify().failures
    assert failure.index == 1 and "not the right-hand side" in failure.reason
    wrong_start = chain("start", Eq(sigma(x), good, evaluate=False), [(sigma(-x), "lhs?"), (good, "definition")])
    assert wrong_start.verify().failures[0].index == 0
    assert "not the left-hand side" in wrong_start.verify().failures[0].reason


@pytest.mark.parametrize(
    ("multipliers", "why"),
    [((1, 1, 1, 0), "not 0"), ((1, 1, 1, -1), "≥ 0"), ((1, 0, 0, 1), "no strict inequality")],
)
def test_wrong_xor_certificate_is_refused(multipliers, why):
    good = proofs.get("xor-not-affine")
    bad = Certificate(
        "bad-xor", "", "test", good.assumptions, good.constraints, [Fraction(m) for m in multipliers]
    )
    result = bad.verify()
    assert not result.ok
    assert any(why in r.reason for r in result.failures)
    assert not result.steps[-1].ok  # no contradiction reached


def test_certificate_constraint_must_match_its_source():
    good = proofs.get("xor-not-affine")
    (rel, source, rule), *rest = good.constraints
    w1 = Symbol("w_1", real=True)
    bad = Certificate("bad-source", "", "test", good.assumptions, [(sympy.Ge(w1, 0), source, rule), *rest], good.multipliers)
    assert bad.verify().failures[0].index == 0


# ------------------------------------------------------------------ the result object
def test_result_reports_failures():
    result = sheet_bce(exp(2 * x)).verify()
    assert not result and not result.ok
    assert result.summary().startswith("sheet-bce: 3 of 4 steps failed; first: step 2:")
    text = result.proof.text(result)
    assert text.count("✗") == 3 and text.count("✓") == 1 and "↳" in text


def test_lines_give_relations_for_renderers():
    lines = proofs.get("bce-logits").lines()
    assert [(k, i, rel) for k, i, rel, _ in lines][:2] == [(0, 0, ""), (0, 1, "=")]
    assert lines[5][:3] == (1, 0, "")  # each case starts its own chain
    assert all(rel == "" for *_, rel, _ in proofs.get("xor-not-affine").lines())


def test_same_seed_same_points():
    proof = proofs.get("bce-logits")
    first, again = proof.verify(seed=3), proof.verify(seed=3)
    assert [r.worst for r in first.steps] == [r.worst for r in again.steps]


def test_points_cover_both_signs_and_label_ends():
    check = _check.NumericCheck({x: S.Reals, y: Interval(0, 1)}, points=8, seed="t", dps=30)
    xs = [env[x] for env in check.points]
    ys = [env[y] for env in check.points]
    assert min(xs) < 0 < max(xs)
    assert 0 in ys and 1 in ys and all(0 <= v <= 1 for v in ys)


def test_numeric_derivative_is_independent_of_sympy():
    # mpmath.diff of the definition, checked against σ(1 − σ) computed directly
    with mpmath.workdps(50):
        value = _check.Evaluator({x: mpmath.mpf("0.3")}).ev(Derivative(sigma(x), x))
        s = 1 / (1 + mpmath.exp(-mpmath.mpf("0.3")))
        assert abs(value - s * (1 - s)) < mpmath.mpf(10) ** -40


def test_empty_sum_follows_karr_convention():
    i, k = Symbol("i", integer=True), Symbol("k", integer=True)
    xs = IndexedBase("x", real=True)
    env = {k: mpmath.mpf(1), xs.label: lambda idx: mpmath.mpf(idx[0])}
    assert _check.Evaluator(env).ev(Sum(xs[i], (i, 1, k - 1))) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"points": 0}, "`points` must be a positive integer"), ({"dps": 5}, "`dps` must be an integer from 20")],
)
def test_verify_options_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        proofs.get("sigmoid-symmetry").verify(**kwargs)
    with pytest.raises(ValueError, match=message):
        proofs.get("xor-not-affine").verify(**kwargs)


# ------------------------------------------------------------------ rendering
def test_every_step_renders_on_one_line_and_as_mathml(results):
    for result in results.values():
        proof = result.proof
        exprs = [proof.statement] + [s.expr for s in proof.steps]
        for expr in exprs:
            line = unicode_line(expr)
            assert "\n" not in line and "**" not in line and "sigma" not in line
            xml.dom.minidom.parseString(f"<math>{mathml(expr)}</math>")
        assert proof.statement_mathml() == mathml(proof.statement)
        assert all(s.mathml() == mathml(s.expr) for s in proof.steps)
        assert proof.text(result, ascii=True).isascii()


def test_mathml_names_sigma_and_shows_branches():
    assert "&#963;" in mathml(sigma(x)) or "σ" in mathml(sigma(x))
    from sympy.printing.mathml import mathml as sympy_mathml

    assert "&#963;" in sympy_mathml(sigma(x), printer="presentation")  # SymPy's own printer too
    branches = mathml(proofs.get("sigmoid-two-branch").statement)
    assert "<mtable" in branches and "otherwise" in branches


@pytest.mark.parametrize(
    ("expr", "shown"),
    [
        (exp(-x), "e⁻ˣ"),
        (add(Max(x, 0), neg(mul(x, y)), log(add(1, exp(-Abs(x))))), "max(x, 0) − xy + log(1 + e^(−|x|))"),
        (frac(add(1, tanh(x / 2)), 2), "(1 + tanh(x/2))/2"),
        (exp(x) - exp(-x), "eˣ − e⁻ˣ"),
    ],
)
def test_unicode_lines(expr, shown):
    assert unicode_line(expr) == shown


def test_to_ascii():
    assert to_ascii("σ(x) = 1/(1 + e⁻ˣ), xₖ ≥ 0") == "sigma(x) = 1/(1 + e^(-x)), x_k >= 0"


# ------------------------------------------------------------------ errors
def test_unknown_name():
    with pytest.raises(ValueError, match=r"`name` must name one of stablenn's proofs; got str 'nope'.*logsumexp-shift"):
        proofs.get("nope")


def test_step_must_be_sympy():
    with pytest.raises(TypeError, match=r"must be a SymPy expression; got float 1.5"):
        Step(1.5, "a float")


def test_proof_needs_steps():
    with pytest.raises(ValueError, match="at least one part, each with at least one step"):
        Proof("empty", "", "test", Eq(x, x), [REAL_X], [])


def test_every_variable_needs_a_domain():
    with pytest.raises(ValueError, match=r"every free variable; got none for y"):
        chain("no-domain", Eq(x + y, y + x), [(x + y, "lhs"), (y + x, "commute")])


# ------------------------------------------------------------------ the command line
def args(*names: str, list_: bool = False, points: int = 8, ascii: bool = False) -> argparse.Namespace:
    return argparse.Namespace(names=list(names), list=list_, ascii=ascii, points=points, seed=0)


def test_prove_all(results, monkeypatch, capsys):
    # the proofs were verified once by the `results` fixture: print those verdicts
    # (prove_one and prove_through_main below run verify for real)
    monkeypatch.setattr(_core.Proof, "verify", lambda self, **kw: results[self.name])
    monkeypatch.setattr(_core.Certificate, "verify", lambda self, **kw: results[self.name])
    assert _cli.run(args()) == 0
    out = capsys.readouterr().out
    assert f"all {len(proofs.names())} proofs verified" in out
    assert "✗" not in out
    for name in proofs.names():
        assert f": {name}: " in out


def test_prove_one_marks_each_step(capsys):
    assert _cli.run(args("softmax-shift")) == 0
    out = capsys.readouterr().out
    steps = len(proofs.get("softmax-shift").steps)
    assert out.count("✓") == steps


def test_prove_ascii(capsys):
    assert _cli.run(args("bce-logits", ascii=True)) == 0
    assert capsys.readouterr().out.isascii()


def test_prove_list(capsys):
    assert _cli.run(args(list_=True)) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == list(proofs.names())


def test_prove_unknown_name_is_one_line_on_stderr(capsys):
    assert _cli.run(args("softmax-shift", "nope")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("stablenn prove: error: `name` must name one of stablenn's proofs")


def test_prove_bad_points(capsys):
    assert _cli.run(args("softmax-shift", points=0)) == 2
    assert "`points` must be a positive integer" in capsys.readouterr().err


def test_prove_exits_1_when_a_step_fails(monkeypatch, capsys):
    monkeypatch.setattr(proofs, "get", lambda name: sheet_bce(exp(2 * x)))
    assert _cli.run(args("bce-logits")) == 1
    out = capsys.readouterr().out
    assert out.count("✗") == 3 and "1 of 1 proofs failed" in out


def test_prove_sheet(capsys):
    assert _cli.run(argparse.Namespace(**vars(args()), sheet=True)) == 0
    out = capsys.readouterr().out
    assert out.count("✗") == 5 and "handwritten attempts are refused" in out
    assert _cli.run(argparse.Namespace(**vars(args("bce-logits")), sheet=True)) == 2


def test_prove_through_main(capsys):
    from stablenn.cli import main

    assert main(["prove", "sigmoid-symmetry", "tanh-sigmoid"]) == 0
    assert "all 2 proofs verified" in capsys.readouterr().out
    assert main(["prove", "bogus"]) == 2
    assert "`name` must name one of" in capsys.readouterr().err
    assert main(["prove", "--list"]) == 0
    assert "logsumexp-shift" in capsys.readouterr().out
    assert main(["prove", "--sheet", "--ascii"]) == 0
    assert capsys.readouterr().out.isascii()


def test_importing_proofs_and_cli_loads_no_sympy():
    code = (
        "import sys, stablenn.proofs, stablenn.proofs._cli; "
        "stablenn.proofs.names(); stablenn.proofs.index(); "
        "print(sorted(m for m in ('sympy', 'mpmath') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_case_condition_must_be_one_variable():
    with pytest.raises(ValueError, match=r"`condition` of part 'both' must be a relation in one variable"):
        Part("both", [Step(x, "lhs")], condition=sympy.Ge(x + y, 0))


def test_domains_must_not_refer_to_each_other():
    m, n = Symbol("m", integer=True), Symbol("n", integer=True)
    with pytest.raises(ValueError, match=r"refer to each other"):
        _check.NumericCheck({m: sympy.Range(1, n + 1), n: sympy.Range(1, m + 1)}, points=1, seed="c", dps=30)


def test_exact_numbers_are_accepted_as_steps():
    assert Step(1, "one").expr == S.One and Step(Fraction(1, 2), "half").expr == S.Half
