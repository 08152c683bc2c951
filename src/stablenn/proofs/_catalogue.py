"""Every identity of the exercise sheet, and the stable forms stablenn evaluates, as proofs.

Each builder returns a :class:`~stablenn.proofs.Proof` whose steps go from the left-hand
side of the statement to its right-hand side one rule at a time.  Steps that would
collapse if SymPy evaluated them (``log e^a = a``, ``e^(x−a+a) = e^x``) are built
unevaluated so that the reader sees the rule being applied; the checker evaluates them.
"""

from __future__ import annotations

from typing import Any, Callable

import sympy
from sympy import (
    Abs,
    Add,
    Derivative,
    Eq,
    IndexedBase,
    Interval,
    Lambda,
    Max,
    Min,
    Mul,
    Piecewise,
    Pow,
    Range,
    S,
    Sum,
    Symbol,
    exp,
    log,
    symbols,
    tanh,
)
from sympy.matrices.expressions import MatrixSymbol
from sympy.matrices.expressions.special import OneMatrix

from ._core import Assumption, Certificate, Given, Part, Proof, Step
from ._functions import log1p, sigma, softplus
from ._index import INDEX

__all__ = ["BUILDERS", "build"]

_TITLES = {name: (problem, title) for name, problem, title in INDEX}


# ------------------------------------------------------------------ helpers
def add(*terms: Any) -> Any:
    """A sum kept in the written order and unevaluated."""
    return Add(*terms, evaluate=False)


def mul(*factors: Any) -> Any:
    """A product kept as written."""
    return Mul(*factors, evaluate=False)


def frac(num: Any, den: Any) -> Any:
    """``num/den`` kept as written."""
    return Mul(num, Pow(den, -1, evaluate=False), evaluate=False)


def neg(expr: Any) -> Any:
    """``−(expr)`` kept as written (SymPy would distribute the minus sign)."""
    return Mul(S.NegativeOne, expr, evaluate=False)


def _proof(name: str, statement: Any, assumptions: list[Assumption], parts: list[Part], claim: str = "") -> Proof:
    problem, title = _TITLES[name]
    return Proof(name, title, problem, statement, assumptions, parts, claim=claim)


x, a, y = symbols("x a y", real=True)
REAL_X = Assumption(x, S.Reals)
LABEL_Y = Assumption(y, Interval(0, 1), "a label, hard or soft")
N = Symbol("N", integer=True, positive=True)
k = Symbol("k", integer=True, positive=True)
i = Symbol("i", integer=True)
j = Symbol("j", integer=True)
xs = IndexedBase("x", real=True)


# ------------------------------------------------------------------ Problem 1
def affine_composition() -> Proof:
    n0, n1, n2 = symbols("n_0 n_1 n_2", integer=True, positive=True)
    W1, b1 = MatrixSymbol("W_1", n1, n0), MatrixSymbol("b_1", n1, 1)
    W2, b2 = MatrixSymbol("W_2", n2, n1), MatrixSymbol("b_2", n2, 1)
    xv = MatrixSymbol("x", n0, 1)
    A, c = MatrixSymbol("A", n2, n0), MatrixSymbol("c", n2, 1)
    lhs = W2 * (W1 * xv + b1) + b2
    part = Part(
        "",
        [
            Step(lhs, "two layers with the identity activation"),
            Step(W2 * W1 * xv + W2 * b1 + b2, "distribute W₂ over the sum"),
            Step(A * xv + c, "name the matrix A and the vector c: one affine layer"),
        ],
        givens=[Given(A, W2 * W1), Given(c, W2 * b1 + b2)],
    )
    dims = [Assumption(n, S.Naturals) for n in (n0, n1, n2)]
    mats = [Assumption(m, S.Reals) for m in (W1, b1, W2, b2, xv)]
    return _proof(
        "affine-composition", Eq(lhs, A * xv + c, evaluate=False), dims + mats, [part],
        claim="for any widths n₀, n₁, n₂",
    )


def affine_activation() -> Proof:
    n0, n1 = symbols("n_0 n_1", integer=True, positive=True)
    alpha, beta = symbols("alpha beta", real=True)
    W, b = MatrixSymbol("W", n1, n0), MatrixSymbol("b", n1, 1)
    xv = MatrixSymbol("x", n0, 1)
    A, c = MatrixSymbol("A", n1, n0), MatrixSymbol("c", n1, 1)
    ones = OneMatrix(n1, 1)
    lhs = alpha * (W * xv + b) + beta * ones
    part = Part(
        "",
        [
            Step(lhs, "activation g(z) = αz + β applied to each entry of Wx + b"),
            Step(alpha * W * xv + alpha * b + beta * ones, "distribute α"),
            Step(A * xv + c, "name A and c: again one affine layer"),
        ],
        givens=[Given(A, alpha * W), Given(c, alpha * b + beta * ones)],
    )
    assumptions = [
        Assumption(n0, S.Naturals), Assumption(n1, S.Naturals),
        Assumption(alpha, S.Reals), Assumption(beta, S.Reals),
        Assumption(W, S.Reals), Assumption(b, S.Reals), Assumption(xv, S.Reals),
    ]
    return _proof(
        "affine-activation", Eq(lhs, A * xv + c, evaluate=False), assumptions, [part],
        claim="𝟏 is the vector of ones; the identity activation is α = 1, β = 0",
    )


def affine_network_depth() -> Proof:
    n0, n1, nk, nk1 = symbols("n_0 n_1 n_k n_k+1", integer=True, positive=True)
    xv = MatrixSymbol("x", n0, 1)
    W1, b1 = MatrixSymbol("W_1", n1, n0), MatrixSymbol("b_1", n1, 1)
    h1, A1, c1 = MatrixSymbol("h_1", n1, 1), MatrixSymbol("A_1", n1, n0), MatrixSymbol("c_1", n1, 1)
    hk, Ak, ck = MatrixSymbol("h_k", nk, 1), MatrixSymbol("A_k", nk, n0), MatrixSymbol("c_k", nk, 1)
    Wk1, bk1 = MatrixSymbol("W_k+1", nk1, nk), MatrixSymbol("b_k+1", nk1, 1)
    hk1, Ak1, ck1 = MatrixSymbol("h_k+1", nk1, 1), MatrixSymbol("A_k+1", nk1, n0), MatrixSymbol("c_k+1", nk1, 1)
    base = Part(
        "base case, depth 1",
        [
            Step(h1, "output of the first layer"),
            Step(W1 * xv + b1, "the first layer, identity activation"),
            Step(A1 * xv + c1, "with A₁ := W₁ and c₁ := b₁"),
        ],
        goal=Eq(h1, A1 * xv + c1, evaluate=False),
        givens=[Given(h1, W1 * xv + b1), Given(A1, W1), Given(c1, b1)],
    )
    step = Part(
        "induction step, depth k to k + 1",
        [
            Step(hk1, "output of the first k + 1 layers"),
            Step(Wk1 * hk + bk1, "layer k + 1 applied to the output of the first k"),
            Step(Wk1 * (Ak * xv + ck) + bk1, "induction hypothesis: hₖ = Aₖx + cₖ"),
            Step(Wk1 * Ak * xv + Wk1 * ck + bk1, "distribute Wₖ₊₁"),
            Step(Ak1 * xv + ck1, "with Aₖ₊₁ := Wₖ₊₁Aₖ and cₖ₊₁ := Wₖ₊₁cₖ + bₖ₊₁"),
        ],
        goal=Eq(hk1, Ak1 * xv + ck1, evaluate=False),
        givens=[
            Given(hk1, Wk1 * hk + bk1),
            Given(hk, Ak * xv + ck, "hypothesis"),
            Given(Ak1, Wk1 * Ak),
            Given(ck1, Wk1 * ck + bk1),
        ],
    )
    assumptions = [Assumption(n, S.Naturals, "layer widths" if n == n0 else "") for n in (n0, n1, nk, nk1)]
    assumptions += [Assumption(m, S.Reals) for m in (xv, W1, b1, Wk1, bk1, Ak, ck)]
    return _proof(
        "affine-network-depth", Eq(hk, Ak * xv + ck, evaluate=False), assumptions, [base, step],
        claim="for every depth k ≥ 1, by induction on k; hₖ is the output of the first k layers",
    )


def xor_not_affine() -> Proof:
    w1, w2, c = symbols("w_1 w_2 c", real=True)

    def f(p1: int, p2: int) -> Any:
        return w1 * p1 + w2 * p2 + c

    data = [((0, 0), 0), ((1, 0), 1), ((0, 1), 1), ((1, 1), 0)]
    constraints = []
    for (p1, p2), label in data:
        if label == 1:
            constraints.append((sympy.Gt(f(p1, p2), 0), f(p1, p2), f"({p1}, {p2}) is class 1: f({p1}, {p2}) > 0"))
        else:
            constraints.append((sympy.Ge(-f(p1, p2), 0), -f(p1, p2), f"({p1}, {p2}) is class 0: f({p1}, {p2}) ≤ 0"))
    problem, title = _TITLES["xor-not-affine"]
    return Certificate(
        "xor-not-affine", title, problem,
        [Assumption(s, S.Reals) for s in (w1, w2, c)],
        constraints, [1, 1, 1, 1],
        claim="f(p) = w₁p₁ + w₂p₂ + c predicts class 1 where f(p) > 0; no w₁, w₂, c fits XOR, and a "
        "network of affine layers of any depth is such an f (affine-network-depth)",
    )


# ------------------------------------------------------------------ Problem 2
def sigmoid_tanh() -> Proof:
    h = x / 2
    P, M = exp(h), exp(-h)
    rhs = frac(add(1, tanh(h)), 2)
    part = Part(
        "",
        [
            Step(sigma(x), "left-hand side"),
            Step(frac(1, add(1, exp(-x))), "definition σ(x) = 1/(1 + e^(−x))"),
            Step(frac(P, add(P, M)), "multiply numerator and denominator by e^(x/2)"),
            Step(frac(add(add(P, M), add(P, neg(M))), mul(2, add(P, M))), "2e^(x/2) = (e^(x/2) + e^(−x/2)) + (e^(x/2) − e^(−x/2))"),
            Step(frac(add(1, frac(add(P, neg(M)), add(P, M))), 2), "split the fraction"),
            Step(rhs, "definition tanh(u) = (eᵘ − e⁻ᵘ)/(eᵘ + e⁻ᵘ) at u = x/2"),
        ],
    )
    return _proof("sigmoid-tanh", Eq(sigma(x), rhs, evaluate=False), [REAL_X], [part])


def _layer_symbols() -> dict[str, Any]:
    D, H = symbols("D H", integer=True, positive=True)
    names = "x W b W' b' U c U' c'"
    return dict(D=D, H=H, **{n.replace("'", "p"): IndexedBase(n, real=True) for n in names.split()})


def _layer_assumptions(s: dict[str, Any]) -> list[Assumption]:
    return [
        Assumption(s["D"], S.Naturals, "inputs"),
        Assumption(s["H"], S.Naturals, "hidden units"),
        Assumption(k, S.Naturals, "an output unit"),
    ] + [
        Assumption(s["x"], S.Reals, "inputs", shown=s["x"][i]),
        Assumption(s["W"], S.Reals, shown=s["W"][j, i]),
        Assumption(s["b"], S.Reals, "hidden layer", shown=s["b"][j]),
        Assumption(s["Wp"], S.Reals, shown=s["Wp"][k, j]),
        Assumption(s["bp"], S.Reals, "output layer", shown=s["bp"][k]),
    ]


def sigmoid_layer_as_tanh() -> Proof:
    s = _layer_symbols()
    D, H, X, W, b, Wp, bp, U, c, Up, cp = (s[n] for n in "D H x W b Wp bp U c Up cp".split())
    z = add(b[j], Sum(mul(W[j, i], X[i]), (i, 1, D)))
    lhs = add(bp[k], Sum(mul(Wp[k, j], sigma(z)), (j, 1, H)))
    rhs = add(cp[k], Sum(mul(Up[k, j], tanh(add(c[j], Sum(mul(U[j, i], X[i]), (i, 1, D))))), (j, 1, H)))
    half_z = add(b[j] / 2, Sum(mul(W[j, i] / 2, X[i]), (i, 1, D)))
    part = Part(
        "",
        [
            Step(lhs, "output unit k of a sigmoid hidden layer (W, b) and output layer (W′, b′)"),
            Step(add(bp[k], Sum(mul(Wp[k, j], frac(add(1, tanh(frac(z, 2))), 2)), (j, 1, H))), "σ(u) = (1 + tanh(u/2))/2 (sigmoid-tanh)"),
            Step(add(bp[k], Sum(Wp[k, j] / 2, (j, 1, H)), Sum(mul(Wp[k, j] / 2, tanh(frac(z, 2))), (j, 1, H))), "split the sum term by term"),
            Step(add(add(bp[k], Sum(Wp[k, j] / 2, (j, 1, H))), Sum(mul(Wp[k, j] / 2, tanh(half_z)), (j, 1, H))), "zⱼ/2 = bⱼ/2 + Σᵢ (Wⱼᵢ/2) xᵢ"),
            Step(rhs, "a tanh layer with U = W/2, c = b/2, and output layer U′ = W′/2, c′ = b′ + W′𝟏/2"),
        ],
        givens=[
            Given(U, Lambda((j, i), W[j, i] / 2)),
            Given(c, Lambda(j, b[j] / 2)),
            Given(Up, Lambda((k, j), Wp[k, j] / 2)),
            Given(cp, Lambda(k, bp[k] + Sum(Wp[k, j] / 2, (j, 1, H)))),
        ],
    )
    return _proof(
        "sigmoid-layer-as-tanh", Eq(lhs, rhs, evaluate=False), _layer_assumptions(s), [part],
        claim="for any numbers of inputs D and hidden units H, and every output unit k",
    )


def tanh_sigmoid() -> Proof:
    P, M, M2 = exp(x), exp(-x), exp(-2 * x)
    rhs = add(2 * sigma(2 * x), -1)
    part = Part(
        "",
        [
            Step(tanh(x), "left-hand side"),
            Step(frac(add(P, neg(M)), add(P, M)), "definition tanh(x) = (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ)"),
            Step(frac(add(1, neg(M2)), add(1, M2)), "divide numerator and denominator by eˣ"),
            Step(frac(add(2, neg(add(1, M2))), add(1, M2)), "1 − e⁻²ˣ = 2 − (1 + e⁻²ˣ)"),
            Step(add(frac(2, add(1, M2)), -1), "split the fraction"),
            Step(rhs, "definition of σ at 2x"),
        ],
    )
    return _proof("tanh-sigmoid", Eq(tanh(x), rhs, evaluate=False), [REAL_X], [part])


def tanh_layer_as_sigmoid() -> Proof:
    s = _layer_symbols()
    D, H, X, W, b, Wp, bp, U, c, Up, cp = (s[n] for n in "D H x W b Wp bp U c Up cp".split())
    z = add(b[j], Sum(mul(W[j, i], X[i]), (i, 1, D)))
    lhs = add(bp[k], Sum(mul(Wp[k, j], tanh(z)), (j, 1, H)))
    rhs = add(cp[k], Sum(mul(Up[k, j], sigma(add(c[j], Sum(mul(U[j, i], X[i]), (i, 1, D))))), (j, 1, H)))
    double_z = add(2 * b[j], Sum(mul(2 * W[j, i], X[i]), (i, 1, D)))
    part = Part(
        "",
        [
            Step(lhs, "output unit k of a tanh hidden layer (W, b) and output layer (W′, b′)"),
            Step(add(bp[k], Sum(mul(Wp[k, j], add(mul(2, sigma(mul(2, z))), -1)), (j, 1, H))), "tanh(u) = 2σ(2u) − 1 (tanh-sigmoid)"),
            Step(add(bp[k], neg(Sum(Wp[k, j], (j, 1, H))), Sum(mul(2 * Wp[k, j], sigma(mul(2, z))), (j, 1, H))), "split the sum term by term"),
            Step(add(add(bp[k], neg(Sum(Wp[k, j], (j, 1, H)))), Sum(mul(2 * Wp[k, j], sigma(double_z)), (j, 1, H))), "2zⱼ = 2bⱼ + Σᵢ 2Wⱼᵢxᵢ"),
            Step(rhs, "a sigmoid layer with U = 2W, c = 2b, and output layer U′ = 2W′, c′ = b′ − W′𝟏"),
        ],
        givens=[
            Given(U, Lambda((j, i), 2 * W[j, i])),
            Given(c, Lambda(j, 2 * b[j])),
            Given(Up, Lambda((k, j), 2 * Wp[k, j])),
            Given(cp, Lambda(k, bp[k] - Sum(Wp[k, j], (j, 1, H)))),
        ],
    )
    return _proof(
        "tanh-layer-as-sigmoid", Eq(lhs, rhs, evaluate=False), _layer_assumptions(s), [part],
        claim="for any numbers of inputs D and hidden units H, and every output unit k",
    )


# ------------------------------------------------------------------ Problem 3
def tanh_derivative() -> Proof:
    P, M = exp(x), exp(-x)
    lhs, rhs = Derivative(tanh(x), x), 1 - tanh(x) ** 2
    part = Part(
        "",
        [
            Step(lhs, "left-hand side"),
            Step(Derivative(frac(add(P, neg(M)), add(P, M)), x), "definition tanh(x) = (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ)"),
            Step(
                frac(add(mul(add(P, M), add(P, M)), neg(mul(add(P, neg(M)), add(P, neg(M))))), Pow(add(P, M), 2, evaluate=False)),
                "quotient rule (f/g)′ = (f′g − fg′)/g², with (eˣ − e⁻ˣ)′ = eˣ + e⁻ˣ and (eˣ + e⁻ˣ)′ = eˣ − e⁻ˣ",
            ),
            Step(add(1, neg(Pow(frac(add(P, neg(M)), add(P, M)), 2, evaluate=False))), "split the fraction: g²/g² − f²/g²"),
            Step(rhs, "definition of tanh: the derivative in terms of the value"),
        ],
    )
    return _proof("tanh-derivative", Eq(lhs, rhs, evaluate=False), [REAL_X], [part])


def sigmoid_derivative() -> Proof:
    u = add(1, exp(-x))
    lhs, rhs = Derivative(sigma(x), x), mul(sigma(x), add(1, neg(sigma(x))))
    part = Part(
        "",
        [
            Step(lhs, "left-hand side"),
            Step(Derivative(Pow(u, -1, evaluate=False), x), "definition σ(x) = (1 + e^(−x))^(−1)"),
            Step(mul(-1, Pow(u, -2, evaluate=False), neg(exp(-x))), "chain rule: (u⁻¹)′ = −u⁻²·u′, with u′ = −e^(−x)"),
            Step(frac(exp(-x), Pow(u, 2, evaluate=False)), "the two minus signs cancel"),
            Step(mul(frac(1, u), frac(exp(-x), u)), "split the square"),
            Step(mul(frac(1, u), add(1, neg(frac(1, u)))), "e^(−x)/(1 + e^(−x)) = ((1 + e^(−x)) − 1)/(1 + e^(−x))"),
            Step(rhs, "definition of σ: the derivative in terms of the value"),
        ],
    )
    return _proof("sigmoid-derivative", Eq(lhs, rhs, evaluate=False), [REAL_X], [part])


def sigmoid_symmetry() -> Proof:
    lhs = add(1, neg(sigma(x)))
    part = Part(
        "",
        [
            Step(lhs, "left-hand side"),
            Step(add(1, neg(frac(1, add(1, exp(-x))))), "definition of σ"),
            Step(frac(exp(-x), add(1, exp(-x))), "common denominator"),
            Step(frac(1, add(exp(x), 1)), "multiply numerator and denominator by eˣ"),
            Step(sigma(-x), "definition of σ at −x: 1/(1 + e^(−(−x)))"),
        ],
    )
    return _proof("sigmoid-symmetry", Eq(lhs, sigma(-x), evaluate=False), [REAL_X], [part])


def sigmoid_derivative_from_input() -> Proof:
    lhs, rhs = Derivative(sigma(x), x), mul(sigma(x), sigma(-x))
    part = Part(
        "",
        [
            Step(lhs, "left-hand side"),
            Step(mul(sigma(x), add(1, neg(sigma(x)))), "σ′ = σ(1 − σ) (sigmoid-derivative)"),
            Step(rhs, "1 − σ(x) = σ(−x) (sigmoid-symmetry): no cancellation when σ(x) is near 1"),
        ],
    )
    return _proof("sigmoid-derivative-from-input", Eq(lhs, rhs, evaluate=False), [REAL_X], [part])


def tanh_derivative_from_input() -> Proof:
    s2 = sigma(2 * x)
    lhs, rhs = Derivative(tanh(x), x), mul(4, s2, sigma(-2 * x))
    part = Part(
        "",
        [
            Step(lhs, "left-hand side"),
            Step(1 - tanh(x) ** 2, "tanh′ = 1 − tanh² (tanh-derivative)"),
            Step(mul(add(1, neg(tanh(x))), add(1, tanh(x))), "difference of squares"),
            Step(mul(add(2, neg(2 * s2)), 2 * s2), "tanh(x) = 2σ(2x) − 1 (tanh-sigmoid)"),
            Step(mul(4, s2, add(1, neg(s2))), "collect the factor 4"),
            Step(rhs, "1 − σ(2x) = σ(−2x) (sigmoid-symmetry): no cancellation when |tanh(x)| is near 1"),
        ],
    )
    return _proof("tanh-derivative-from-input", Eq(lhs, rhs, evaluate=False), [REAL_X], [part])


# ------------------------------------------------------------------ Problems 4 and 5
_SUM_ASSUMPTIONS = [
    Assumption(N, S.Naturals, "number of terms"),
    Assumption(xs, S.Reals, shown=xs[i]),
]


def logsumexp_shift() -> Proof:
    def total(body: Any) -> Any:
        return Sum(body, (i, 1, N))

    xi = xs[i]
    lhs = log(total(exp(xi)))
    rhs = a + log(total(exp(xi - a)))
    part = Part(
        "",
        [
            Step(lhs, "left-hand side"),
            Step(log(total(exp(add(add(xi, -a), a)))), "add and subtract a in each exponent"),
            Step(log(total(mul(exp(a), exp(xi - a)))), "e^(u + v) = eᵘ·eᵛ"),
            Step(log(mul(exp(a), total(exp(xi - a)))), "eᵃ does not depend on i: take it out of the sum"),
            Step(add(log(exp(a), evaluate=False), log(total(exp(xi - a)))), "log(uv) = log u + log v for u, v > 0 (a sum of N ≥ 1 exponentials is > 0)"),
            Step(rhs, "log eᵃ = a for real a"),
        ],
    )
    return _proof(
        "logsumexp-shift", Eq(lhs, rhs, evaluate=False),
        [Assumption(a, S.Reals, "any real shift")] + _SUM_ASSUMPTIONS, [part],
        claim="for any real a and any N ≥ 1; a = maxᵢ xᵢ makes the largest exponent 0",
    )


def softmax_shift() -> Proof:
    def total(body: Any) -> Any:
        return Sum(body, (i, 1, N))

    xi, xk = xs[i], xs[k]
    lhs = frac(exp(xk), total(exp(xi)))
    rhs = frac(exp(xk - a), total(exp(xi - a)))
    part = Part(
        "",
        [
            Step(lhs, "left-hand side: component k of the softmax"),
            Step(frac(mul(exp(a), exp(xk - a)), total(mul(exp(a), exp(xi - a)))), "eᵘ = eᵃ·e^(u − a) in every exponential"),
            Step(frac(mul(exp(a), exp(xk - a)), mul(exp(a), total(exp(xi - a)))), "eᵃ does not depend on i: take it out of the sum"),
            Step(rhs, "cancel eᵃ > 0"),
        ],
    )
    return _proof(
        "softmax-shift", Eq(lhs, rhs, evaluate=False),
        [Assumption(a, S.Reals, "any real shift"), Assumption(k, Range(1, N + 1), "a component")] + _SUM_ASSUMPTIONS,
        [part],
        claim="for any real a, any N ≥ 1 and every component k",
    )


# ------------------------------------------------------------------ Problem 6
def bce_logits() -> Proof:
    lhs = neg(add(mul(y, log(sigma(x))), mul(add(1, -y), log(add(1, neg(sigma(x)))))))
    rhs = add(Max(x, 0), neg(mul(x, y)), log(add(1, exp(-Abs(x)))))
    E, P = exp(-x), exp(x)
    L, Lp = log(add(1, E)), log(add(1, P))
    nonneg = Part(
        "case x ≥ 0",
        [
            Step(lhs, "left-hand side"),
            Step(neg(add(mul(y, log(frac(1, add(1, E)))), mul(add(1, -y), log(frac(E, add(1, E)))))),
                 "σ(x) = 1/(1 + e^(−x)) and 1 − σ(x) = e^(−x)/(1 + e^(−x)); e^(−x) ≤ 1 cannot overflow"),
            Step(neg(add(neg(mul(y, L)), mul(add(1, -y), add(-x, neg(L))))),
                 "log(1/u) = −log u and log(e^(−x)/u) = −x − log u, for u > 0"),
            Step(add(x, neg(mul(x, y)), L), "multiply out: yL + (1 − y)x + (1 − y)L = x − xy + L"),
            Step(rhs, "x ≥ 0: x = max(x, 0) and x = |x|"),
        ],
        condition=sympy.Ge(x, 0),
    )
    negative = Part(
        "case x < 0",
        [
            Step(lhs, "left-hand side"),
            Step(neg(add(mul(y, log(frac(P, add(P, 1)))), mul(add(1, -y), log(frac(1, add(P, 1)))))),
                 "multiply by eˣ: σ(x) = eˣ/(eˣ + 1) and 1 − σ(x) = 1/(eˣ + 1); eˣ < 1 cannot overflow"),
            Step(neg(add(mul(y, add(x, neg(Lp))), neg(mul(add(1, -y), Lp)))),
                 "log(eˣ/u) = x − log u and log(1/u) = −log u, for u > 0"),
            Step(add(neg(mul(x, y)), Lp), "multiply out"),
            Step(rhs, "x < 0: max(x, 0) = 0 and −|x| = x"),
        ],
        condition=sympy.Lt(x, 0),
    )
    return _proof(
        "bce-logits", Eq(lhs, rhs, evaluate=False), [REAL_X, LABEL_Y], [nonneg, negative],
        claim="for every real logit x and label y ∈ [0, 1]; no exponential overflows",
    )


# ------------------------------------------------------------------ stable forms (item 7)
def softplus_stable() -> Proof:
    rhs = add(Max(x, 0), log1p(exp(-Abs(x))))
    nonneg = Part(
        "case x ≥ 0",
        [
            Step(softplus(x), "left-hand side"),
            Step(log(add(1, exp(x))), "definition softplus(x) = log(1 + eˣ)"),
            Step(log(mul(exp(x), add(exp(-x), 1))), "factor out eˣ"),
            Step(add(x, log(add(1, exp(-x)))), "log(uv) = log u + log v for u, v > 0, and log eˣ = x"),
            Step(add(x, log1p(exp(-x))), "log(1 + u) = log1p(u): accurate when u is tiny"),
            Step(rhs, "x ≥ 0: x = max(x, 0) and x = |x|; e^(−|x|) ≤ 1 cannot overflow"),
        ],
        condition=sympy.Ge(x, 0),
    )
    negative = Part(
        "case x < 0",
        [
            Step(softplus(x), "left-hand side"),
            Step(log(add(1, exp(x))), "definition softplus(x) = log(1 + eˣ)"),
            Step(log1p(exp(x)), "log(1 + u) = log1p(u)"),
            Step(rhs, "x < 0: max(x, 0) = 0 and −|x| = x"),
        ],
        condition=sympy.Lt(x, 0),
    )
    return _proof("softplus-stable", Eq(softplus(x), rhs, evaluate=False), [REAL_X], [nonneg, negative])


def log_sigmoid() -> Proof:
    lhs = log(sigma(x))
    rhs = add(Min(x, 0), neg(log1p(exp(-Abs(x)))))
    part = Part(
        "",
        [
            Step(lhs, "left-hand side"),
            Step(log(frac(1, add(1, exp(-x)))), "definition of σ"),
            Step(neg(log(add(1, exp(-x)))), "log(1/u) = −log u for u > 0"),
            Step(neg(softplus(-x)), "definition of softplus at −x"),
            Step(neg(add(Max(-x, 0), log1p(exp(-Abs(x))))), "softplus(u) = max(u, 0) + log1p(e^(−|u|)) at u = −x (softplus-stable)"),
            Step(rhs, "−max(−x, 0) = min(x, 0)"),
        ],
    )
    return _proof("log-sigmoid", Eq(lhs, rhs, evaluate=False), [REAL_X], [part],
                  claim="log_sigmoid(x) = −softplus(−x), evaluated without overflow")


def sigmoid_two_branch() -> Proof:
    rhs = Piecewise((frac(1, add(1, exp(-x))), sympy.Ge(x, 0)), (frac(exp(x), add(1, exp(x))), True))
    nonneg = Part(
        "case x ≥ 0",
        [
            Step(sigma(x), "left-hand side"),
            Step(frac(1, add(1, exp(-x))), "definition of σ; e^(−x) ≤ 1 cannot overflow"),
            Step(rhs, "x ≥ 0 selects the first branch"),
        ],
        condition=sympy.Ge(x, 0),
    )
    negative = Part(
        "case x < 0",
        [
            Step(sigma(x), "left-hand side"),
            Step(frac(1, add(1, exp(-x))), "definition of σ"),
            Step(frac(exp(x), mul(exp(x), add(1, exp(-x)))), "multiply numerator and denominator by eˣ"),
            Step(frac(exp(x), add(1, exp(x))), "eˣ(1 + e^(−x)) = eˣ + 1; eˣ < 1 cannot overflow"),
            Step(rhs, "x < 0 selects the second branch"),
        ],
        condition=sympy.Lt(x, 0),
    )
    return _proof("sigmoid-two-branch", Eq(sigma(x), rhs, evaluate=False), [REAL_X], [nonneg, negative])


def logsumexp_dominant() -> Proof:
    xi, xk = xs[i], xs[k]
    d = xi - xk
    below, above = Sum(exp(d), (i, 1, k - 1)), Sum(exp(d), (i, k + 1, N))
    lhs = log(Sum(exp(xi), (i, 1, N)))
    rhs = add(xk, log1p(add(below, above)))
    part = Part(
        "",
        [
            Step(lhs, "left-hand side"),
            Step(add(xk, log(Sum(exp(d), (i, 1, N)))), "shift by a = xₖ (logsumexp-shift)"),
            Step(add(xk, log(add(below, exp(add(xk, -xk), evaluate=False), above))), "split off the k-th term"),
            Step(add(xk, log(add(1, below, above))), "e^(xₖ − xₖ) = e⁰ = 1"),
            Step(rhs, "log(1 + u) = log1p(u): when xₖ is the largest term, u ≤ N − 1 and the small terms are not lost"),
        ],
    )
    return _proof(
        "logsumexp-dominant", Eq(lhs, rhs, evaluate=False),
        [Assumption(k, Range(1, N + 1), "the index of a largest term")] + _SUM_ASSUMPTIONS,
        [part],
        claim="for any k; with k the index of the largest term, every other term is ≤ 1",
    )


def bce_stablenn() -> Proof:
    w, wp = symbols("w w_p", real=True)
    lhs = neg(mul(w, add(mul(wp, y, log(sigma(x))), mul(add(1, -y), log(add(1, neg(sigma(x))))))))
    rhs = mul(w, add(mul(wp, y, softplus(-x)), mul(add(1, -y), softplus(x))))
    part = Part(
        "",
        [
            Step(lhs, "left-hand side: weight w, positive-class weight wₚ"),
            Step(neg(mul(w, add(mul(wp, y, log(sigma(x))), mul(add(1, -y), log(sigma(-x)))))), "1 − σ(x) = σ(−x) (sigmoid-symmetry): no cancellation"),
            Step(mul(w, add(mul(wp, y, neg(log(sigma(x)))), mul(add(1, -y), neg(log(sigma(-x)))))), "move the minus sign inside"),
            Step(rhs, "−log σ(u) = softplus(−u) (log-sigmoid)"),
        ],
    )
    return _proof(
        "bce-stablenn", Eq(lhs, rhs, evaluate=False),
        [REAL_X, LABEL_Y, Assumption(w, S.Reals, "weight"), Assumption(wp, S.Reals, "pos_weight")], [part],
        claim="each softplus is evaluated as max(u, 0) + log1p(e^(−|u|)): no term cancels for soft labels",
    )


def bce_problem_6_form() -> Proof:
    lhs = add(mul(y, softplus(-x)), mul(add(1, -y), softplus(x)))
    rhs = add(Max(x, 0), neg(mul(x, y)), log(add(1, exp(-Abs(x)))))
    part = Part(
        "",
        [
            Step(lhs, "stablenn's form with w = wₚ = 1 (bce-stablenn)"),
            Step(add(mul(y, add(softplus(x), -x)), mul(add(1, -y), softplus(x))), "softplus(−x) = softplus(x) − x: log(1 + e^(−x)) = log(e^(−x)(eˣ + 1))"),
            Step(add(softplus(x), neg(mul(x, y))), "collect softplus(x)"),
            Step(add(Max(x, 0), log(add(1, exp(-Abs(x)))), neg(mul(x, y))), "softplus(x) = max(x, 0) + log(1 + e^(−|x|)) (softplus-stable)"),
            Step(rhs, "reorder: Problem 6's right-hand side"),
        ],
    )
    return _proof(
        "bce-problem-6-form", Eq(lhs, rhs, evaluate=False), [REAL_X, LABEL_Y], [part],
        claim="the two forms are equal; Problem 6's subtracts xy from max(x, 0) and cancels for soft labels",
    )


BUILDERS: dict[str, Callable[[], Proof]] = {
    "affine-composition": affine_composition,
    "affine-activation": affine_activation,
    "affine-network-depth": affine_network_depth,
    "xor-not-affine": xor_not_affine,
    "sigmoid-tanh": sigmoid_tanh,
    "sigmoid-layer-as-tanh": sigmoid_layer_as_tanh,
    "tanh-sigmoid": tanh_sigmoid,
    "tanh-layer-as-sigmoid": tanh_layer_as_sigmoid,
    "tanh-derivative": tanh_derivative,
    "sigmoid-derivative": sigmoid_derivative,
    "sigmoid-symmetry": sigmoid_symmetry,
    "sigmoid-derivative-from-input": sigmoid_derivative_from_input,
    "tanh-derivative-from-input": tanh_derivative_from_input,
    "logsumexp-shift": logsumexp_shift,
    "softmax-shift": softmax_shift,
    "bce-logits": bce_logits,
    "softplus-stable": softplus_stable,
    "log-sigmoid": log_sigmoid,
    "sigmoid-two-branch": sigmoid_two_branch,
    "logsumexp-dominant": logsumexp_dominant,
    "bce-stablenn": bce_stablenn,
    "bce-problem-6-form": bce_problem_6_form,
}


def build(name: str) -> Proof:
    """Build the proof called ``name`` (see ``stablenn.proofs.names()``)."""
    return BUILDERS[name]()
