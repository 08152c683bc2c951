"""The formula parser of ``stablenn audit "..."`` and its evaluators.

Truth: the grammar written out by hand (trees), mpmath at high precision (values), and the
positions of the offending characters counted by hand (refusals).
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from stablenn.audit._expr import (
    ELEMENTARY,
    MAX_DEPTH,
    MAX_LENGTH,
    PRIMITIVES,
    Binary,
    Call,
    Neg,
    Num,
    Var,
    _round_bfloat16,
    _round_bfloat16_bits,
    evaluate_exact,
    evaluate_interval,
    evaluate_mpmath,
    evaluate_numpy,
    is_vector,
    number,
    parse,
    to_sympy,
    variables,
    vector_variables,
)
from stablenn.audit._ulp import round_mpf, ulp_distance

x, y, z, v = Var("x"), Var("y"), Var("z"), Var("v")


def n(value: int | str) -> Num:
    return Num(Fraction(value), str(value))


def b(op: str, left: object, right: object) -> Binary:
    return Binary(op, left, right)  # type: ignore[arg-type]


# ---------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("1 + 2*3", b("+", n(1), b("*", n(2), n(3)))),
        ("2*3 + 1", b("+", b("*", n(2), n(3)), n(1))),
        ("(1 + 2)*3", b("*", b("+", n(1), n(2)), n(3))),
        ("x - y - z", b("-", b("-", x, y), z)),  # left-associative
        ("x - (y - z)", b("-", x, b("-", y, z))),
        ("x/y/z", b("/", b("/", x, y), z)),
        ("x/y*z", b("*", b("/", x, y), z)),
        ("x**y**z", b("**", x, b("**", y, z))),  # right-associative, as in Python
        ("(x**y)**z", b("**", b("**", x, y), z)),
        ("-x**2", Neg(b("**", x, n(2)))),  # ** binds tighter than unary minus
        ("(-x)**2", b("**", Neg(x), n(2))),
        ("2**-x", b("**", n(2), Neg(x))),
        ("2**-x**2", b("**", n(2), Neg(b("**", x, n(2))))),
        ("-x*y", b("*", Neg(x), y)),  # unary minus binds tighter than *
        ("x*-y", b("*", x, Neg(y))),
        ("x - -y", b("-", x, Neg(y))),
        ("--x", Neg(Neg(x))),
        ("+x", x),
        ("-(x + y)", Neg(b("+", x, y))),
        ("x**2*y", b("*", b("**", x, n(2)), y)),
        ("  x\t+\ny ", b("+", x, y)),
        ("max(x, y, z)", Call("max", (x, y, z))),
        ("pow(x, 2) + sum(exp(v))", b("+", Call("pow", (x, n(2))), Call("sum", (Call("exp", (v,)),)))),
    ],
)
def test_precedence_and_associativity(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", Fraction(2)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("0.1", Fraction(1, 10)),  # one tenth exactly, not the float nearest to it
        ("1e-3", Fraction(1, 1000)),
        ("2.5E+8", Fraction(250_000_000)),
        ("1e400", Fraction(10) ** 400),  # finite as a real number; overflows in float64
        ("007", Fraction(7)),
    ],
)
def test_numbers_are_exact(text: str, value: Fraction) -> None:
    tree = parse(text)
    assert isinstance(tree, Num)
    assert tree.value == value
    assert tree.text == text


@pytest.mark.parametrize("name", sorted({**ELEMENTARY, **PRIMITIVES}))
def test_every_function_parses(name: str) -> None:
    arity = {**ELEMENTARY, **PRIMITIVES}[name]
    count = 2 if arity == -1 else arity
    args = ", ".join(["v", "w"][:count]) if name in ("sum", "logsumexp", "softmax", "log_softmax") else ", ".join(
        ["x", "y"][:count]
    )
    tree = parse(f"{name}({args})")
    assert isinstance(tree, Call)
    assert tree.name == name
    assert len(tree.args) == count


def test_max_and_min_with_one_argument_reduce_a_vector() -> None:
    assert vector_variables(parse("max(v)")) == ("v",)
    assert vector_variables(parse("max(x, y)")) == ()
    assert not is_vector(parse("min(v)"))
    assert not is_vector(parse("min(v, 0)"))  # v is in no reduction: a scalar variable
    assert is_vector(parse("min(v, 0) + sum(v)"))  # elementwise against a scalar


def test_variables_in_order_of_appearance() -> None:
    assert variables(parse("x*y - log1p(exp(x))")) == ("x", "y")
    assert variables(parse("b + a*b + c")) == ("b", "a", "c")
    assert variables(parse("2 + 3")) == ()


@pytest.mark.parametrize(
    ("text", "vectors", "vector_result"),
    [
        ("log(sum(exp(v)))", ("v",), False),
        ("exp(v)/sum(exp(v))", ("v",), True),
        ("x - log(sum(exp(v)))", ("v",), False),
        ("v - log(sum(exp(v)))", ("v",), True),
        ("sum(w*v) + x", ("w", "v"), False),
        ("softmax(v)", ("v",), True),
        ("log_softmax(v + x)*y", ("v", "x"), True),  # x sits inside a reduction: a vector
        ("logsumexp(v)", ("v",), False),
        ("x*y", (), False),
    ],
)
def test_vector_variables(text: str, vectors: tuple[str, ...], vector_result: bool) -> None:
    tree = parse(text)
    assert vector_variables(tree) == vectors
    assert is_vector(tree) is vector_result


# round trip: str(tree) parses back to the same tree, for random trees


def _trees() -> st.SearchStrategy[object]:
    leaves = st.one_of(
        st.sampled_from([x, y, z]),
        st.integers(0, 1000).map(number),
        st.sampled_from(["0.5", "1e-3", ".25", "2.5E+8"]).map(lambda t: Num(Fraction(t), t)),
    )

    def extend(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        return st.one_of(
            children.map(Neg),
            st.tuples(st.sampled_from(["+", "-", "*", "/", "**"]), children, children).map(lambda t: Binary(*t)),
            st.tuples(st.sampled_from(["exp", "log", "sqrt", "tanh", "sigmoid", "softplus"]), children).map(
                lambda t: Call(t[0], (t[1],))
            ),
            st.tuples(children, children).map(lambda t: Call("pow", t)),
            st.tuples(children, children, children).map(lambda t: Call("max", t)),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(_trees())
def test_text_of_a_tree_parses_back_to_it(tree: object) -> None:
    assert parse(str(tree)) == tree


# ---------------------------------------------------------------- refusals


def _caret_column(message: str) -> int:
    """0-based position the caret points at, read from the message's display lines."""
    lines = message.splitlines()
    shown, caret = lines[1], lines[2]
    col = caret.index("^") - 4
    if shown[4:].startswith("..."):
        raise AssertionError("long formulas are checked separately")
    return col


@pytest.mark.parametrize(
    ("text", "pos", "words"),
    [
        ("__import__('os')", 0, "names starting with '_'"),
        ("x.real", 1, "attribute access"),
        ("os.system('ls')", 2, "attribute access"),
        ("exp(x).__class__", 6, "attribute access"),
        ('"abc"', 0, "strings are not accepted"),
        ("'abc' + x", 0, "strings are not accepted"),
        ("lambda x: x", 0, "keyword `lambda`"),
        ("x if x else 0", 2, "keyword `if`"),
        ("import os", 0, "keyword `import`"),
        ("foo(x)", 0, "unknown function `foo`"),
        ("exp(eval(x))", 4, "unknown function `eval`"),
        ("x(2)", 0, "unknown function `x`"),
        ("x $ 2", 2, "'$'"),
        ("x ^ 2", 2, "use ** for powers"),
        ("x @ y", 2, "matrix products"),
        ("x % 2", 2, "remainder"),
        ("v[0]", 1, "indexing"),
        ("{x}", 0, "braces"),
        ("x = 1", 2, "assignments"),
        ("x < 1", 2, "comparisons"),
        ("x; y", 1, "statements"),
        ("x # note", 2, "comments"),
        ("x + é", 4, "ASCII"),
        ("exp", 0, "`exp` is a function"),
        ("exp + 1", 0, "`exp` is a function"),
        ("inf", 0, "`inf` is reserved"),
        ("x - nan", 4, "`nan` is reserved"),
        ("2*pi", 2, "`pi` is reserved"),
        ("e**x", 0, "`e` is reserved"),
        ("x +", 3, "the formula ends"),
        ("(x", 2, "to close the '(' at column 1"),
        ("exp(x", 5, "to close the '(' at column 4"),
        ("exp(x y)", 6, "to close the '(' at column 4"),
        ("x)", 1, "closes no '('"),
        ("x y", 2, "expected an operator"),
        ("exp(x) (y)", 7, "expected an operator"),
        ("x, y", 1, "expected an operator"),
        ("2x", 1, "write 2*x, not 2x"),
        ("1.2.3", 3, "write 2*x, not 2x"),
        ("1e", 1, "write 2*x, not 2x"),
        ("1e99999", 2, "exponent longer than 4 digits"),
        ("*x", 0, "expected a number, a variable"),
        ("()", 1, "expected a number, a variable"),
        ("x**", 3, "the formula ends"),
        ("pow(x)", 0, "`pow` takes exactly two arguments, got 1"),
        ("exp(x, y)", 0, "`exp` takes exactly one arguments, got 2"),
        ("exp()", 0, "`exp` takes exactly one arguments, got 0"),
        ("max()", 0, "`max` takes one vector or two or more arguments, got 0"),
        ("binary_cross_entropy_with_logits(x)", 0, "takes exactly two"),
        ("sum(2)", 0, "`sum` reduces a vector"),
        ("x + max(3)", 4, "`max` reduces a vector"),
        ("sum(v, w)", 0, "`sum` takes exactly one"),
    ],
)
def test_refused_with_caret(text: str, pos: int, words: str) -> None:
    with pytest.raises(ValueError, match="formula") as info:
        parse(text)
    message = str(info.value)
    assert words in message
    assert f"at column {pos + 1}:" in message
    assert _caret_column(message) == pos
    assert message.splitlines()[1][4:] == text.replace("\t", " ")
    assert message.splitlines()[-1].startswith("accepted: numbers")
    assert "exp, log, log1p, expm1, sqrt, abs, sin, cos, tanh, sigmoid, pow, max, min, sum" in message


def test_refused_too_deep_parentheses() -> None:
    text = "(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(ValueError, match=f"nesting deeper than {MAX_DEPTH} levels") as info:
        parse(text)
    message = str(info.value)
    # the parser gives up when entering the 101st parenthesis, at the character after it
    assert f"at column {MAX_DEPTH + 2}:" in message
    shown, caret = message.splitlines()[1:3]
    assert shown[4:].startswith("...") and shown.endswith("...")
    # the window is shifted: the caret still sits under the character it names
    assert shown[caret.index("^")] == text[MAX_DEPTH + 1]
    parse("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH)  # one level less is accepted


def test_refused_too_deep_chain_of_operators() -> None:
    # x+x+...: each + makes the tree one level deeper; the 100th + makes 101 levels
    text = "+".join(["x"] * (MAX_DEPTH + 1))
    with pytest.raises(ValueError, match="nesting deeper") as info:
        parse(text)
    assert f"at column {2 * MAX_DEPTH}:" in str(info.value)
    assert text[2 * MAX_DEPTH - 1] == "+"
    parse("+".join(["x"] * MAX_DEPTH))


@pytest.mark.parametrize("text", ["-" * (MAX_DEPTH + 1) + "x", "exp(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1)])
def test_refused_too_deep_unary_and_calls(text: str) -> None:
    with pytest.raises(ValueError, match="nesting deeper"):
        parse(text)


def test_refused_too_long() -> None:
    text = "x+" * (MAX_LENGTH // 2) + "x"
    with pytest.raises(ValueError, match=f"at most {MAX_LENGTH} characters long; got {len(text)}"):
        parse(text)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_refused_empty(text: str) -> None:
    with pytest.raises(ValueError, match="must contain an expression") as info:
        parse(text)
    assert "accepted: numbers" in str(info.value)


@pytest.mark.parametrize("value", [None, 3, b"x+1", ["x"]])
def test_refused_not_text(value: object) -> None:
    with pytest.raises(TypeError, match="`formula` must be a string"):
        parse(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------- NumPy evaluator against mpmath

# formulas without cancellation on the inputs below ([0.5, 2]), so each is well conditioned
# and a naive evaluation is within a few ULP of the exact value
_EASY_SCALAR = [
    "x*y + 1",
    "exp(x)/(1 + y*y)",
    "sqrt(abs(x)) + log1p(x*x)",
    "sin(x)*cos(y) + 2",
    "tanh(x) + sigmoid(y)",
    "pow(x, 1.5) + x**3",
    "max(x, y) + min(x, y, 1)",
    "-x/y - expm1(x)",
    "log(x + y)",
    "softplus(x) - log_sigmoid(-y)",
    "sigmoid_grad(x) + tanh_grad(y)",
    "binary_cross_entropy_with_logits(x, 0.25)",
]
_EASY_VECTOR = [
    "log(sum(exp(v)))",
    "exp(v)/sum(exp(v))",
    "x + max(v) + min(v)",
    "logsumexp(v)",
    "softmax(v)",
    "-log_softmax(v)",
    "sum(v*v)",
]
_TOLERANCE = {"float64": 8, "float32": 8, "float16": 4, "bfloat16": 4}


def _sample(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    from stablenn.audit._expr import _NumpyEval

    return _NumpyEval(dtype).round(rng.uniform(0.5, 2.0, size=shape))


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("text", _EASY_SCALAR + _EASY_VECTOR)
def test_numpy_agrees_with_mpmath_on_easy_inputs(text: str, dtype: str) -> None:
    tree = parse(text)
    rng = np.random.default_rng(sum(map(ord, text + dtype)))
    vecs = set(vector_variables(tree))
    values = {name: _sample(rng, dtype, (6, 4) if name in vecs else (6,)) for name in variables(tree)}
    got = evaluate_numpy(tree, values, dtype)
    for i in range(6):
        point = {k: (list(a[i]) if k in vecs else a[i]) for k, a in values.items()}
        exact = evaluate_mpmath(tree, point, prec=200)
        exact_list = exact if isinstance(exact, list) else [exact]
        rounded = [round_mpf(e, dtype) for e in exact_list]
        dist = ulp_distance(np.ravel(got[i]), rounded, dtype)
        assert dist.max() <= _TOLERANCE[dtype], (text, dtype, got[i], rounded)


@pytest.mark.parametrize(
    ("dtype", "storage"),
    [("float64", np.float64), ("float32", np.float32), ("float16", np.float16), ("bfloat16", np.float32)],
)
def test_numpy_result_dtype_and_shape(dtype: str, storage: type) -> None:
    out = evaluate_numpy(parse("x + sum(v)"), {"x": np.zeros((2, 3)), "v": np.ones((2, 3, 5))}, dtype)
    assert out.dtype == storage
    assert out.shape == (2, 3)
    assert evaluate_numpy(parse("softmax(v)"), {"v": np.ones((2, 5))}, dtype).shape == (2, 5)
    assert evaluate_numpy(parse("2*3"), {}, dtype).shape == ()


def test_numpy_rounds_every_operation_to_the_format() -> None:
    # 1 + 2**-12 is 1 in bfloat16 (8 bits) and in float16 (11 bits) but not in float32
    tree = parse("(1 + x) - 1")
    small = np.array([2.0**-12])
    assert evaluate_numpy(tree, {"x": small}, "float32")[0] == 2.0**-12
    assert evaluate_numpy(tree, {"x": small}, "float16")[0] == 0.0
    assert evaluate_numpy(tree, {"x": small}, "bfloat16")[0] == 0.0
    # 1 + 2**-9 is representable in float16 but not in bfloat16
    assert evaluate_numpy(tree, {"x": np.array([2.0**-9])}, "float16")[0] == 2.0**-9
    assert evaluate_numpy(tree, {"x": np.array([2.0**-9])}, "bfloat16")[0] == 0.0
    # the literal 0.1 is rounded to the format, as numpy.float32(0.1) does
    assert evaluate_numpy(parse("0.1 + 0*x"), {"x": np.zeros(1)}, "float32")[0] == np.float32(0.1)


def test_numpy_literals_beyond_the_range() -> None:
    # as in a program: 1e400 is inf and 1e-400 is 0 in float64; the exact value is kept
    zero = {"x": np.zeros(1)}
    assert evaluate_numpy(parse("1e400 + x"), zero, "float64")[0] == np.inf
    assert evaluate_numpy(parse("1e-400 + x"), zero, "float64")[0] == 0.0
    assert evaluate_numpy(parse("1e39 + x"), zero, "float32")[0] == np.inf
    assert evaluate_exact(parse("1e400*1e-390 + x"), {"x": 0.0}) == 1e10


def test_numpy_domain_errors_are_values_not_warnings() -> None:
    # pytest turns warnings into errors: these must return NaN/inf silently, as NumPy computes them
    x = np.array([-1.0, 0.0, 1000.0])
    assert np.isnan(evaluate_numpy(parse("log(x)"), {"x": x}, "float64")[0])
    assert evaluate_numpy(parse("log(x)"), {"x": x}, "float64")[1] == -np.inf
    assert evaluate_numpy(parse("1/x"), {"x": x}, "float32")[1] == np.inf
    assert evaluate_numpy(parse("exp(x)"), {"x": x}, "float16")[2] == np.inf
    assert np.isnan(evaluate_numpy(parse("sqrt(x)"), {"x": x}, "bfloat16")[0])
    assert np.isnan(evaluate_numpy(parse("exp(x) - exp(x)"), {"x": x}, "float64")[2])
    # stablenn refuses labels outside [0, 1]: the evaluator returns NaN there instead of raising
    bce = evaluate_numpy(parse("binary_cross_entropy_with_logits(x, y)"), {"x": x, "y": np.array([2.0, 0.5, 1.0])}, "float64")
    assert np.isnan(bce[0]) and np.isfinite(bce[1:]).all()
    assert evaluate_numpy(parse("max(v)"), {"v": np.zeros((2, 0))}, "float64").tolist() == [-np.inf, -np.inf]


def test_bfloat16_bit_rounding_matches_ml_dtypes() -> None:
    import ml_dtypes

    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, size=20000, dtype=np.uint64).astype(np.uint32)
    # ties (low half exactly 0x8000), the largest finite values, infinities and NaN
    special = np.array(
        [0x3F808000, 0x3F818000, 0x7F7F8000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x80000000, 0x00008000],
        dtype=np.uint32,
    )
    a = np.concatenate([bits, special]).view(np.float32)
    mine = _round_bfloat16_bits(a)
    with np.errstate(invalid="ignore"):  # ml_dtypes warns when it casts NaN
        theirs = a.astype(ml_dtypes.bfloat16).astype(np.float32)
    same = (mine.view(np.uint32) == theirs.view(np.uint32)) | (np.isnan(mine) & np.isnan(theirs))
    assert same.all()
    assert (_round_bfloat16(a).view(np.uint32) == theirs.view(np.uint32))[~np.isnan(theirs)].all()


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"x": np.zeros(2)}, "missing v"),
        ({"x": np.zeros(2), "v": np.float64(1.0)}, "`values['v']` must be a vector"),
        ({"x": np.zeros(2), "v": np.zeros((2, 3)), "w": np.zeros((2, 4))}, "must all have one length"),
    ],
)
def test_numpy_bad_values(values: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        evaluate_numpy(parse("x + sum(v*w)" if "w" in values else "x + sum(v)"), values, "float64")


def test_numpy_unknown_dtype() -> None:
    with pytest.raises(TypeError, match="`dtype` must name a floating-point format"):
        evaluate_numpy(parse("x"), {"x": np.zeros(1)}, "float8")


# ---------------------------------------------------------------- mpmath evaluators


@pytest.mark.parametrize(
    ("text", "point", "expected"),
    [
        ("log(x)", {"x": -1.0}, math.nan),  # domain error: NaN, not a complex number
        ("sqrt(x)", {"x": -4.0}, math.nan),
        ("log1p(x)", {"x": -2.0}, math.nan),
        ("log(x)", {"x": 0.0}, -math.inf),  # the limit, as IEEE
        ("log1p(x)", {"x": -1.0}, -math.inf),
        ("1/x", {"x": 0.0}, math.nan),  # undefined: the limit's sign depends on the side
        ("pow(x, 0.5)", {"x": -8.0}, math.nan),
        ("pow(x, 3)", {"x": -2.0}, -8.0),
        ("pow(x, -1)", {"x": 0.0}, math.nan),
        ("x**0", {"x": 0.0}, 1.0),
        ("x - x", {"x": math.inf}, math.nan),
        ("sigmoid(x)", {"x": -math.inf}, 0.0),
        ("tanh(x)", {"x": math.inf}, 1.0),
        ("sin(x)", {"x": math.inf}, math.nan),
        ("softplus(x)", {"x": math.inf}, math.inf),
        ("binary_cross_entropy_with_logits(x, y)", {"x": math.inf, "y": 1.0}, 0.0),  # the limit
        ("binary_cross_entropy_with_logits(x, y)", {"x": -math.inf, "y": 0.0}, 0.0),
        ("binary_cross_entropy_with_logits(x, y)", {"x": math.inf, "y": 0.0}, math.inf),
        ("max(x, y)", {"x": math.nan, "y": 1.0}, math.nan),
        ("logsumexp(v)", {"v": [-math.inf, -math.inf]}, -math.inf),
    ],
)
def test_special_points(text: str, point: dict[str, object], expected: float) -> None:
    tree = parse(text)
    for got in (float(evaluate_mpmath(tree, point)), evaluate_exact(tree, point)):
        if math.isnan(expected):
            assert math.isnan(got)
        else:
            assert got == expected


def test_mpmath_fixed_precision_misses_what_the_interval_oracle_sees() -> None:
    tree = parse("log(1 + exp(x))")
    # at 256 bits 1 + exp(-200) rounds to 1: the fixed-precision value is 0
    assert evaluate_mpmath(tree, {"x": -200.0}, prec=256) == 0
    # the enclosure at 256 bits says it cannot tell
    lo, hi = evaluate_interval(tree, {"x": -200.0}, prec=256)
    assert lo == 0 and hi > 0
    # mpmath.log1p(mpmath.exp(-200)) at 50 digits: 1.3838965267367375...e-87
    with mpmath.workdps(50):
        reference = mpmath.log1p(mpmath.exp(-200))
    assert evaluate_exact(tree, {"x": -200.0}) == round_mpf(reference, "float64")
    # far below, the exact value underflows: decided as 0 once the enclosure is below half
    # the smallest subnormal
    assert evaluate_exact(tree, {"x": -1e300}) == 0.0


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("log(1 + exp(x))", {"x": -30.5}),
        ("sqrt(x**2) - x", {"x": 1.5}),
        ("exp(x) - 1", {"x": 1e-10}),
        ("x*y - log1p(exp(x))", {"x": 3.25, "y": -0.75}),
        ("exp(v)/sum(exp(v))", {"v": [1.0, -2.0, 700.0]}),
        ("tanh(x)", {"x": 1e-5}),
        ("sigmoid_grad(x) + tanh_grad(x)", {"x": -4.0}),
        ("pow(x, y)", {"x": 2.5, "y": -3.5}),
    ],
)
def test_exact_equals_high_precision_mpmath(text: str, point: dict[str, object], dtype: str) -> None:
    tree = parse(text)
    exact = evaluate_exact(tree, point, dtype)
    reference = evaluate_mpmath(tree, point, prec=3000)  # far more bits than these need
    if isinstance(reference, list):
        assert exact == [round_mpf(r, dtype) for r in reference]
    else:
        assert exact == round_mpf(reference, dtype)
    enclosure = evaluate_interval(tree, point, prec=300)
    pairs = enclosure if isinstance(enclosure, list) else [enclosure]
    refs = reference if isinstance(reference, list) else [reference]
    for (lo, hi), r in zip(pairs, refs):
        assert lo <= r <= hi


def test_exact_gives_up_where_undecidable() -> None:
    # log of an enclosure of 0 that never shrinks to a point: exp(x) - exp(x) is exactly 0
    # but interval arithmetic cannot know the two are the same number
    with pytest.raises(ValueError, match="could not decide the correct rounding"):
        evaluate_exact(parse("log(exp(x) - exp(x))"), {"x": 1.0}, max_prec=512)


def test_mpmath_bad_values() -> None:
    with pytest.raises(ValueError, match="`values\\['x'\\]` must be one number"):
        evaluate_mpmath(parse("x"), {"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="missing y"):
        evaluate_mpmath(parse("x + y"), {"x": 1.0})


# ---------------------------------------------------------------- SymPy


def test_sympy_is_built_from_the_tree() -> None:
    xs, ys = sympy.symbols("x y", real=True)
    assert to_sympy(parse("log1p(x) + expm1(y)")) == sympy.log(1 + xs) + sympy.exp(ys) - 1
    assert to_sympy(parse("0.1*x")) == xs / 10  # exact decimal
    assert to_sympy(parse("max(x, y) - abs(x)")) == sympy.Max(xs, ys) - sympy.Abs(xs)
    v0, v1 = sympy.symbols("v_0 v_1", real=True)
    assert to_sympy(parse("sum(exp(v))"), length=2) == sympy.exp(v0) + sympy.exp(v1)
    assert to_sympy(parse("exp(v)/sum(exp(v))"), length=2) == (
        sympy.exp(v0) / (sympy.exp(v0) + sympy.exp(v1)),
        sympy.exp(v1) / (sympy.exp(v0) + sympy.exp(v1)),
    )
    p = sympy.Symbol("p", positive=True)
    assert to_sympy(parse("softplus(x)"), {"x": p}, primitives="stable") == p + sympy.log(1 + sympy.exp(-p))


def test_sympy_text_is_never_parsed() -> None:
    # a variable whose name SymPy would read as a function still becomes a plain symbol
    tree = parse("Lambda + Symbol*S")
    out = to_sympy(tree)
    assert {str(s) for s in out.free_symbols} == {"Lambda", "Symbol", "S"}


def test_sympy_bad_primitives_option() -> None:
    with pytest.raises(ValueError, match="`primitives` must be 'definition' or 'stable'"):
        to_sympy(parse("x"), primitives="fast")


def test_every_expression_message_is_raised_by_a_test() -> None:
    """Each message function of the `audit expressions` section is exercised above."""
    import inspect
    import pathlib
    import re

    from stablenn import _messages

    source = pathlib.Path(__file__).read_text()
    section = inspect.getsource(_messages).split("# ---------------------------------------------------------------- audit expressions")[1]
    section = section.split("\n# ----")[0]
    names = set(re.findall(r"^def (expr_\w+)\(", section, flags=re.M))
    phrases = {
        "expr_not_text": "`formula` must be a string",
        "expr_too_long": "characters long; got",
        "expr_empty": "must contain an expression",
        "expr_too_deep": "nesting deeper than",
        "expr_number_exponent": "exponent longer than 4 digits",
        "expr_after_number": "write 2*x, not 2x",
        "expr_underscore_name": "names starting with '_'",
        "expr_keyword": "keyword `lambda`",
        "expr_bad_character": "use ** for powers",
        "expr_unmatched_close": "closes no '('",
        "expr_expected_operator": "expected an operator",
        "expr_reserved_name": "`inf` is reserved",
        "expr_function_not_called": "`exp` is a function",
        "expr_unclosed": "to close the '(' at column 4",
        "expr_ends_early": "the formula ends",
        "expr_expected_operand": "expected a number, a variable",
        "expr_unknown_function": "unknown function `foo`",
        "expr_arity": "takes exactly two arguments, got 1",
        "expr_reduction_constant": "`sum` reduces a vector",
        "expr_missing_values": "missing y",
        "expr_vector_shape": "must be a vector",
        "expr_scalar_shape": "must be one number",
        "expr_vector_lengths": "must all have one length",
        "expr_sympy_primitives": "`primitives` must be 'definition' or 'stable'",
    }
    assert names == set(phrases)
    for name, phrase in phrases.items():
        assert phrase in source, name
        assert source.count(phrase) >= 2, name  # once here, once where it is raised
