"""Formulas a user types: a safe parser and the evaluators that run the parsed tree.

``stablenn audit "log(1 + exp(x))"`` measures a formula nobody has written a function
for.  The text is parsed by our own tokenizer and precedence-climbing parser into a small
tree (`Num`, `Var`, `Neg`, `Binary`, `Call`); nothing the user types is ever handed to
``eval``, ``sympify`` or the ``ast`` module.  The same tree is then

* evaluated naively in a floating-point format with NumPy (`evaluate_numpy`): every
  operation is rounded to the format, as a program written in that format would do;
* evaluated with mpmath at a chosen precision (`evaluate_mpmath`), or in mpmath interval
  arithmetic (`evaluate_interval`), which `evaluate_exact` uses to raise the precision
  until the correctly rounded result is certain;
* converted to SymPy (`to_sympy`), for the identity checks of the rewrite rules.

The language
------------
* Numbers: ``2``, ``0.5``, ``.5``, ``5.``, ``1e-3``, ``2.5E+8``.  A number means its exact
  decimal value (``0.1`` is one tenth) to the exact evaluators; the NumPy evaluator rounds
  it to the format as a program would (through float64, like ``numpy.float32(0.1)``).
  ``inf``, ``nan``, ``pi`` and ``e`` are refused: infinities and NaN enter through the
  inputs, and ``exp(1)`` spells e.
* Variables: ASCII names (``x``, ``y_1``, ``logits``), not starting with ``_``, not a
  Python keyword (``lambda``, ``if``, ``import``...) and not a function name.
* Operators: ``+ - * / **``, unary ``-`` and ``+``, parentheses, commas between
  arguments.  Precedence and associativity are Python's: ``**`` binds tighter than unary
  minus (``-x**2`` is ``-(x**2)``) and groups to the right (``2**3**2`` is ``2**9``);
  ``2**-x`` is accepted.
* Functions: ``exp log log1p expm1 sqrt abs sin cos tanh sigmoid`` (one argument),
  ``pow(a, b)``, ``max``/``min`` (one argument: the largest/smallest component of a vector;
  two or more: elementwise), ``sum(v)``; and the stable primitives of stablenn, which the
  rewrites produce: ``softplus log_sigmoid sigmoid_grad tanh_grad`` (elementwise),
  ``logsumexp(v)``, ``softmax(v)``, ``log_softmax(v)`` and
  ``binary_cross_entropy_with_logits(x, y)`` (elementwise, no reduction).
* Vectors: a variable that appears anywhere inside the argument of a reduction
  (``sum``, one-argument ``max``/``min``, ``logsumexp``, ``softmax``, ``log_softmax``) is a
  *vector variable* throughout the formula.  Elementwise operations on vectors work
  componentwise and broadcast scalars (NumPy semantics), so ``exp(v)/sum(exp(v))`` is a
  vector and ``x - log(sum(exp(v)))`` a scalar.  All vector variables of one formula have
  the same length.
* Limits: at most `MAX_LENGTH` characters and `MAX_DEPTH` levels of nesting (parentheses,
  calls and chains of operators all count).

Anything else is refused with a ValueError that shows the formula with a caret under the
offending character and says what is accepted.

The exact evaluators compute the real function: where it is undefined the value is NaN
(logarithm or square root of a negative number, ``x/0``, ``0**negative``, a negative
number to a non-integer power, ``inf - inf``, ``0*inf``), while ``log(0) = -inf`` and the
other limits at infinite inputs follow IEEE arithmetic (``exp(-inf) = 0``).  mpmath has
no signed zero, so ``-0.0`` is 0 to them.

>>> f = parse("x*y - log1p(exp(x))")
>>> variables(f)
('x', 'y')
>>> print(f)
x*y - log1p(exp(x))
>>> g = parse("x - log(sum(exp(v)))")
>>> vector_variables(g), is_vector(g)
(('v',), False)
>>> import numpy as np
>>> evaluate_numpy(parse("log(1 + exp(x))"), {"x": np.array([-40.0, 0.0, 800.0])}, "float64")
array([0.        , 0.69314718,        inf])
>>> float(evaluate_mpmath(parse("log(1 + exp(x))"), {"x": -40.0}))
4.248354255291589e-18
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from stablenn import _messages

__all__ = [
    "ELEMENTARY",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "PRIMITIVES",
    "Binary",
    "Call",
    "Expr",
    "Neg",
    "Num",
    "Var",
    "accepted_summary",
    "evaluate_exact",
    "evaluate_interval",
    "evaluate_mpmath",
    "evaluate_numpy",
    "is_vector",
    "number",
    "parse",
    "to_sympy",
    "variables",
    "vector_variables",
]

MAX_LENGTH = 1000
"""Longest formula accepted, in characters."""

MAX_DEPTH = 100
"""Deepest nesting accepted: parentheses, calls, unary minus and operator chains."""

ELEMENTARY: dict[str, int] = {
    "exp": 1,
    "log": 1,
    "log1p": 1,
    "expm1": 1,
    "sqrt": 1,
    "abs": 1,
    "sin": 1,
    "cos": 1,
    "tanh": 1,
    "sigmoid": 1,
    "pow": 2,
    "max": -1,  # one argument: reduction over a vector; two or more: elementwise
    "min": -1,
    "sum": 1,
}
"""The math functions a formula may call, with their number of arguments (-1: 1 or more)."""

PRIMITIVES: dict[str, int] = {
    "softplus": 1,
    "log_sigmoid": 1,
    "sigmoid_grad": 1,
    "tanh_grad": 1,
    "logsumexp": 1,
    "softmax": 1,
    "log_softmax": 1,
    "binary_cross_entropy_with_logits": 2,
}
"""stablenn's stable functions a formula may call (the rewrites produce them)."""

_FUNCTIONS = {**ELEMENTARY, **PRIMITIVES}
_VECTOR_ARGUMENT = frozenset({"sum", "logsumexp", "softmax", "log_softmax"})  # + max/min of one
_VECTOR_RESULT = frozenset({"softmax", "log_softmax"})
_RESERVED = {
    "inf": "infinities enter through the inputs' range; write a large number such as 1e308",
    "nan": "NaN enters through the inputs; a formula cannot contain it",
    "pi": "write the number, 3.141592653589793",
    "e": "write exp(1) for Euler's number",
}


# ---------------------------------------------------------------- the tree


class Expr:
    """A node of a parsed formula.  ``str(expr)`` is text that `parse` reads back."""

    __slots__ = ()

    def __str__(self) -> str:
        return _format(self)


@dataclass(frozen=True)
class Num(Expr):
    """A number literal; `value` is its exact value, `text` how it was written."""

    value: Fraction
    text: str = field(compare=False)
    pos: int | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Var(Expr):
    """A variable (scalar or vector: see `vector_variables`)."""

    name: str
    pos: int | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Neg(Expr):
    """Unary minus."""

    arg: Expr
    pos: int | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Binary(Expr):
    """``left op right`` with `op` one of ``+ - * / **``."""

    op: str
    left: Expr
    right: Expr
    pos: int | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Call(Expr):
    """A call of one of the accepted functions (`ELEMENTARY` or `PRIMITIVES`)."""

    name: str
    args: tuple[Expr, ...]
    pos: int | None = field(default=None, compare=False, repr=False)


def number(value: Fraction | int) -> Expr:
    """The tree of an exact rational: a `Num`, negated with `Neg`, or a quotient of two.

    >>> print(number(Fraction(-3, 4)), number(Fraction(1, 3)), number(5))
    -0.75 1/3 5
    """
    value = Fraction(value)
    if value < 0:
        return Neg(number(-value))
    if value.denominator == 1:
        return Num(value, str(value.numerator))
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den == 1:  # a terminating decimal
        k = max(twos, fives)
        digits = str(value.numerator * 10**k // value.denominator).rjust(k + 1, "0")
        return Num(value, f"{digits[:-k]}.{digits[-k:]}")
    return Binary("/", number(value.numerator), number(value.denominator))


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}
_NEG_PREC = 3
_ATOM_PREC = 5


def _prec(e: Expr) -> int:
    if isinstance(e, Binary):
        return _PREC[e.op]
    if isinstance(e, Neg):
        return _NEG_PREC
    return _ATOM_PREC


def _format(e: Expr) -> str:
    if isinstance(e, Num):
        return e.text
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Call):
        return f"{e.name}({', '.join(_format(a) for a in e.args)})"
    if isinstance(e, Neg):
        inner = _format(e.arg)
        return f"-({inner})" if _prec(e.arg) < _NEG_PREC else f"-{inner}"
    if isinstance(e, Binary):
        p = _PREC[e.op]
        left, right = _format(e.left), _format(e.right)
        if e.op == "**":
            # right-associative; a unary minus may follow ** ("2**-x")
            if _prec(e.left) <= p:
                left = f"({left})"
            if _prec(e.right) < _NEG_PREC:
                right = f"({right})"
            return f"{left}**{right}"
        if _prec(e.left) < p:
            left = f"({left})"
        if _prec(e.right) <= p:
            right = f"({right})"
        sep = f" {e.op} " if p == 1 else e.op
        return f"{left}{sep}{right}"
    raise TypeError(f"not a formula node: {e!r}")  # pragma: no cover - internal invariant


def _children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Neg):
        return (e.arg,)
    if isinstance(e, Binary):
        return (e.left, e.right)
    if isinstance(e, Call):
        return e.args
    return ()


def _is_reduction(e: Expr) -> bool:
    """A call whose argument is a vector (sum, logsumexp, softmax, log_softmax, max/min of one)."""
    return isinstance(e, Call) and (
        e.name in _VECTOR_ARGUMENT or (e.name in ("max", "min") and len(e.args) == 1)
    )


def variables(expr: Expr) -> tuple[str, ...]:
    """Names of the variables of `expr`, scalar and vector, in order of first appearance.

    >>> variables(parse("y*exp(x) + x"))
    ('y', 'x')
    """
    seen: dict[str, None] = {}
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, Var):
            seen.setdefault(e.name, None)
        stack.extend(reversed(_children(e)))
    return tuple(seen)


def vector_variables(expr: Expr) -> tuple[str, ...]:
    """Names of the vector variables of `expr` (those used inside a reduction), in order.

    >>> vector_variables(parse("exp(v)/sum(exp(v)) + x"))
    ('v',)
    """
    found: set[str] = set()
    stack: list[tuple[Expr, bool]] = [(expr, False)]
    while stack:
        e, inside = stack.pop()
        if isinstance(e, Var) and inside:
            found.add(e.name)
        inner = inside or _is_reduction(e)
        stack.extend((c, inner) for c in _children(e))
    return tuple(n for n in variables(expr) if n in found)


def is_vector(expr: Expr, vectors: Iterable[str] | None = None) -> bool:
    """Whether `expr` evaluates to a vector (a vector variable outside every reduction).

    >>> is_vector(parse("exp(v)/sum(exp(v))")), is_vector(parse("log(sum(exp(v)))"))
    (True, False)
    """
    vecs = frozenset(vector_variables(expr) if vectors is None else vectors)
    return _is_vector(expr, vecs)


def _is_vector(e: Expr, vecs: frozenset[str]) -> bool:
    if isinstance(e, Var):
        return e.name in vecs
    if isinstance(e, Call):
        if e.name in _VECTOR_RESULT:
            return True
        if _is_reduction(e):
            return False
    return any(_is_vector(c, vecs) for c in _children(e))


# ---------------------------------------------------------------- tokenizer and parser

_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d+))?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_EXPONENT_DIGITS = 4
_HINTS = {
    "^": "use ** for powers, as in x**2",
    '"': "strings are not accepted",
    "'": "strings are not accepted",
    ".": "attribute access (a.b) is not accepted; numbers are written 0.5 or .5",
    "[": "indexing is not accepted; reduce a vector variable with sum, max or min",
    "]": "indexing is not accepted; reduce a vector variable with sum, max or min",
    "{": "braces are not accepted",
    "}": "braces are not accepted",
    "=": "assignments and comparisons are not accepted",
    "<": "comparisons are not accepted; use max or min",
    ">": "comparisons are not accepted; use max or min",
    "!": "comparisons are not accepted; use max or min",
    "%": "the remainder operator is not accepted",
    "@": "matrix products are not accepted",
    "&": "bitwise operators are not accepted",
    "|": "bitwise operators are not accepted; use abs(x) for |x|",
    "~": "bitwise operators are not accepted",
    ":": "lambdas and slices are not accepted",
    ";": "one formula only: statements are not accepted",
    "#": "comments are not accepted",
    "\\": "backslashes are not accepted",
    "`": "backquotes are not accepted",
    "$": "this character is not accepted",
    "?": "this character is not accepted",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "name", "op", "end"
    text: str
    pos: int
    value: Fraction | None = None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c.isascii() and (c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit())):
            m = _NUMBER.match(text, i)
            assert m is not None
            mantissa, exponent = m.group(1), m.group(2)
            if exponent is not None and len(exponent.lstrip("+-")) > _MAX_EXPONENT_DIGITS:
                raise _messages.expr_number_exponent(text, m.start(2), _MAX_EXPONENT_DIGITS)
            j = m.end()
            if j < n and (text[j].isalnum() or text[j] in "_."):
                raise _messages.expr_after_number(text, j)
            whole, _, frac = mantissa.partition(".")
            value = Fraction(int(whole + frac or "0"), 10 ** len(frac))
            if exponent is not None:
                value *= Fraction(10) ** int(exponent)
            tokens.append(_Token("num", m.group(0), i, value))
            i = j
        elif c.isascii() and (c.isalpha() or c == "_"):
            m = _NAME.match(text, i)
            assert m is not None
            name = m.group(0)
            if name.startswith("_"):
                raise _messages.expr_underscore_name(text, i, name)
            if keyword.iskeyword(name):
                raise _messages.expr_keyword(text, i, name)
            tokens.append(_Token("name", name, i))
            i = m.end()
        elif text.startswith("**", i):
            tokens.append(_Token("op", "**", i))
            i += 2
        elif c in "+-*/(),":
            tokens.append(_Token("op", c, i))
            i += 1
        else:
            raise _messages.expr_bad_character(text, i, _HINTS.get(c, ""))
    tokens.append(_Token("end", "", n))
    return tokens


class _Parser:
    """Recursive descent with precedence climbing over the binary operators."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth: dict[int, int] = {}  # id(node) -> height of its subtree

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def height(self, node: Expr, pos: int) -> Expr:
        h = 1 + max((self.depth[id(c)] for c in _children(node)), default=0)
        if h > MAX_DEPTH:
            raise _messages.expr_too_deep(self.text, pos, MAX_DEPTH)
        self.depth[id(node)] = h
        return node

    def parse(self) -> Expr:
        node = self.expression(1, 0)
        t = self.tok
        if t.kind != "end":
            if t.text == ")":
                raise _messages.expr_unmatched_close(self.text, t.pos)
            raise _messages.expr_expected_operator(self.text, t.pos, t.text)
        return node

    def expression(self, min_prec: int, level: int) -> Expr:
        if level > MAX_DEPTH:
            raise _messages.expr_too_deep(self.text, self.tok.pos, MAX_DEPTH)
        t = self.tok
        if t.kind == "op" and t.text in "+-":
            self.advance()
            # unary minus binds tighter than * and / but looser than **: -x**2 = -(x**2)
            operand = self.expression(_NEG_PREC, level + 1)
            left = operand if t.text == "+" else self.height(Neg(operand, t.pos), t.pos)
        else:
            left = self.primary(level)
        while True:
            t = self.tok
            if t.kind != "op" or t.text not in _PREC:
                return left
            p = _PREC[t.text]
            if p < min_prec:
                return left
            self.advance()
            # ** groups to the right: its right operand may hold another ** (and a unary minus)
            right = self.expression(p if t.text == "**" else p + 1, level + 1)
            left = self.height(Binary(t.text, left, right, t.pos), t.pos)

    def primary(self, level: int) -> Expr:
        t = self.advance()
        if t.kind == "num":
            assert t.value is not None
            return self.height(Num(t.value, t.text, t.pos), t.pos)
        if t.kind == "name":
            if self.tok.text == "(":
                return self.call(t, level)
            if t.text in _RESERVED:
                raise _messages.expr_reserved_name(self.text, t.pos, t.text, _RESERVED[t.text])
            if t.text in _FUNCTIONS:
                raise _messages.expr_function_not_called(self.text, t.pos, t.text)
            return self.height(Var(t.text, t.pos), t.pos)
        if t.text == "(":
            inner = self.expression(1, level + 1)
            if self.tok.text != ")":
                raise _messages.expr_unclosed(self.text, self.tok.pos, t.pos, self.tok.text)
            self.advance()
            return inner
        if t.kind == "end":
            raise _messages.expr_ends_early(self.text, t.pos)
        raise _messages.expr_expected_operand(self.text, t.pos, t.text)

    def call(self, name: _Token, level: int) -> Expr:
        if name.text not in _FUNCTIONS:
            raise _messages.expr_unknown_function(self.text, name.pos, name.text)
        open_ = self.advance()
        args: list[Expr] = []
        if self.tok.text != ")":
            while True:
                args.append(self.expression(1, level + 1))
                if self.tok.text == ",":
                    self.advance()
                    continue
                if self.tok.text != ")":
                    raise _messages.expr_unclosed(self.text, self.tok.pos, open_.pos, self.tok.text)
                break
        self.advance()
        arity = _FUNCTIONS[name.text]
        if (arity == -1 and not args) or (arity >= 0 and len(args) != arity):
            raise _messages.expr_arity(self.text, name.pos, name.text, arity, len(args))
        node = Call(name.text, tuple(args), name.pos)
        if _is_reduction(node) and not variables(node.args[0]):
            raise _messages.expr_reduction_constant(self.text, name.pos, name.text)
        return self.height(node, name.pos)


def parse(text: str) -> Expr:
    """Parse a formula (see the module docstring for the language).

    Parameters
    ----------
    text : str
        The formula, e.g. ``"log(1 + exp(x))"``.

    Returns
    -------
    Expr
        The root of the tree.  ``str`` of it reads back to an equal tree.

    Raises
    ------
    TypeError
        If `text` is not a string.
    ValueError
        If the formula is empty, longer than `MAX_LENGTH`, nested deeper than `MAX_DEPTH`,
        or contains anything outside the language; the message shows the formula with a
        caret under the offending character.

    Examples
    --------
    >>> print(parse("-x**2 + 2**3**2"))
    -x**2 + 2**3**2
    >>> parse("-x**2") == Neg(Binary("**", Var("x"), Num(Fraction(2), "2")))
    True
    >>> parse("__import__('os')")
    Traceback (most recent call last):
    ...
    ValueError: `formula` is not accepted at column 1: names starting with '_' are not accepted (got `__import__`).
        __import__('os')
        ^
    accepted: numbers (2, 0.5, 1e-3), variable names (x, y_1), + - * / ** with parentheses, and calls of exp, log, log1p, expm1, sqrt, abs, sin, cos, tanh, sigmoid, pow, max, min, sum, softplus, log_sigmoid, sigmoid_grad, tanh_grad, logsumexp, softmax, log_softmax, binary_cross_entropy_with_logits.
    """
    if not isinstance(text, str):
        raise _messages.expr_not_text(text)
    if len(text) > MAX_LENGTH:
        raise _messages.expr_too_long(len(text), MAX_LENGTH)
    if not text.strip():
        raise _messages.expr_empty(text)
    return _Parser(text).parse()


def accepted_summary() -> str:
    """One line listing what a formula may contain (used by the error messages)."""
    return (
        "numbers (2, 0.5, 1e-3), variable names (x, y_1), + - * / ** with parentheses, and "
        f"calls of {', '.join(_FUNCTIONS)}."
    )


# ---------------------------------------------------------------- NumPy, in a format


def _round_bfloat16(a: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), kept as float32.

    Uses ml_dtypes when it is installed; otherwise rounds the bit pattern: add
    ``0x7FFF`` plus the lowest kept bit, then clear the low 16 bits (carries into the
    exponent give the next binade, or infinity above the largest finite value).
    """
    a = np.asarray(a, dtype=np.float32)
    try:
        import ml_dtypes
    except ImportError:  # pragma: no cover - ml_dtypes comes with JAX in the test environment
        return _round_bfloat16_bits(a)
    with np.errstate(invalid="ignore"):  # ml_dtypes warns when it casts NaN
        return a.astype(ml_dtypes.bfloat16).astype(np.float32)


def _round_bfloat16_bits(a: np.ndarray) -> np.ndarray:
    bits = np.asarray(a, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    out = rounded.view(np.float32)
    return np.where(np.isnan(a), np.float32(np.nan), out)


_NUMPY_UNARY = {
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
}


def _format_name(dtype: Any) -> str:
    from stablenn.audit._ulp import get_format

    return get_format(dtype).name


class _NumpyEval:
    def __init__(self, name: str) -> None:
        self.name = name
        self.bf16 = name == "bfloat16"
        self.work = np.dtype(np.float32 if self.bf16 else name)

    def round(self, a: Any) -> np.ndarray:
        a = np.asarray(a)
        if a.dtype != self.work:
            a = a.astype(self.work)
        return _round_bfloat16(a) if self.bf16 else a

    def __call__(self, e: Expr, env: Mapping[str, np.ndarray]) -> np.ndarray:
        r = self.round
        if isinstance(e, Num):
            return r(np.float64(_literal_float(e.value)))  # as a program writes it: through float64
        if isinstance(e, Var):
            return env[e.name]
        if isinstance(e, Neg):
            return r(np.negative(self(e.arg, env)))
        if isinstance(e, Binary):
            a, b = self(e.left, env), self(e.right, env)
            ufunc = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}[e.op]
            return r(ufunc(a, b))
        assert isinstance(e, Call)
        args = [self(a, env) for a in e.args]
        name = e.name
        if name in _NUMPY_UNARY:
            return r(_NUMPY_UNARY[name](args[0]))
        if name == "pow":
            return r(np.power(args[0], args[1]))
        if name in ("max", "min"):
            if len(args) == 1:
                reduce = np.max if name == "max" else np.min
                start = -np.inf if name == "max" else np.inf
                return r(reduce(args[0], axis=-1, keepdims=True, initial=start))
            combine = np.maximum if name == "max" else np.minimum
            out = args[0]
            for a in args[1:]:
                out = r(combine(out, a))
            return out
        if name == "sum":
            return r(np.sum(args[0], axis=-1, keepdims=True))
        return r(self.primitive(name, args))

    def primitive(self, name: str, args: list[np.ndarray]) -> np.ndarray:
        """stablenn's own function (imported lazily); float16 stays float16, bfloat16 runs on float32."""
        import stablenn

        if name == "sigmoid":
            return stablenn.sigmoid(args[0])
        if name in ("softplus", "log_sigmoid", "sigmoid_grad", "tanh_grad"):
            return getattr(stablenn, name)(args[0])
        if name == "logsumexp":
            return stablenn.logsumexp(args[0], axis=-1, keepdims=True)
        if name in ("softmax", "log_softmax"):
            return getattr(stablenn, name)(args[0], axis=-1)
        assert name == "binary_cross_entropy_with_logits"
        x, y = np.broadcast_arrays(args[0], args[1])
        # stablenn refuses labels outside [0, 1]: those inputs give NaN here, as a domain error
        valid = (y >= 0) & (y <= 1)
        safe_y = np.where(valid, y, self.work.type(0.5))
        out = stablenn.binary_cross_entropy_with_logits(np.ascontiguousarray(x), safe_y, reduction="none")
        return np.where(valid, out, self.work.type(np.nan))


def _literal_float(value: Fraction) -> float:
    """The float64 a program gets for the literal: correctly rounded, inf beyond the range."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def evaluate_numpy(expr: Expr, values: Mapping[str, Any], dtype: Any = "float64") -> np.ndarray:
    """Evaluate `expr` naively in a floating-point format, rounding after every operation.

    Parameters
    ----------
    expr : Expr
        A parsed formula.
    values : mapping of str to array_like
        One array per variable.  A scalar variable's array has any shape ``S`` (the
        samples); a vector variable's has shape ``S + (n,)``, the vector along the last
        axis, the same `n` for every vector variable.  Values are first rounded to the
        format.
    dtype : str or dtype
        ``"float16"``, ``"bfloat16"``, ``"float32"`` or ``"float64"`` (or the NumPy
        dtype).  float16, float32 and float64 use NumPy's own arithmetic in that dtype
        (number literals go through float64 first, as in a program).  bfloat16, which NumPy
        lacks, is computed in float32 and rounded to bfloat16 after every operation (with
        ml_dtypes), which is what bfloat16 programs on CPUs do.

    Returns
    -------
    numpy.ndarray
        Shape ``S`` for a scalar formula, ``S + (n,)`` for a vector one; dtype float16,
        float32 or float64, and float32 holding bfloat16 values for bfloat16 (the audit's
        storage convention).

    Raises
    ------
    ValueError
        If a variable has no values or the vector variables' lengths differ.
    TypeError
        If `dtype` is not one of the four formats.

    Notes
    -----
    Overflow, division by zero and domain errors never raise or warn: they give
    ``inf`` and ``NaN`` exactly as NumPy computes them.  ``sigmoid`` and the primitives
    (``softplus``, ``logsumexp``...) call stablenn's public functions.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1e-8, 0.5])
    >>> evaluate_numpy(parse("exp(x) - 1"), {"x": x}, "float32")
    array([0.       , 0.6487212], dtype=float32)
    >>> evaluate_numpy(parse("exp(v)/sum(exp(v))"), {"v": np.array([[0.0, 1000.0]])}, "float64")
    array([[ 0., nan]])
    """
    name = _format_name(dtype)
    ev = _NumpyEval(name)
    vecs = set(vector_variables(expr))
    env = _numpy_inputs(expr, values, vecs, ev.round)
    with np.errstate(all="ignore"):
        out = ev(expr, env)
        if out.ndim and not _is_vector(expr, frozenset(vecs)):
            out = out[..., 0]
    return np.array(out, dtype=ev.work)


def _numpy_inputs(
    expr: Expr, values: Mapping[str, Any], vecs: set[str], round_: Any
) -> dict[str, np.ndarray]:
    names = variables(expr)
    missing = [n for n in names if n not in values]
    if missing:
        raise _messages.expr_missing_values(missing, tuple(values))
    env: dict[str, np.ndarray] = {}
    lengths: dict[str, int] = {}
    with np.errstate(all="ignore"):
        for n in names:
            a = round_(np.asarray(values[n], dtype=np.float64) if _not_float(values[n]) else values[n])
            if n in vecs:
                if a.ndim == 0:
                    raise _messages.expr_vector_shape(n, a.shape)
                lengths[n] = a.shape[-1]
                env[n] = a
            else:
                env[n] = a[..., None]
    if len(set(lengths.values())) > 1:
        raise _messages.expr_vector_lengths(lengths)
    return env


def _not_float(value: Any) -> bool:
    return np.asarray(value).dtype.kind != "f"


# ---------------------------------------------------------------- mpmath, one precision


def _mp() -> Any:
    import mpmath

    return mpmath


def _to_mpf(value: Any) -> Any:
    mpmath = _mp()
    if isinstance(value, mpmath.mpf):
        return value
    if isinstance(value, Fraction):
        return mpmath.mpf(value.numerator) / value.denominator
    return mpmath.mpf(float(value))  # exact: a float has 53 bits, the precision is >= 53


class _MpEval:
    """Real-valued evaluation in mpmath at the current precision.

    Undefined points are NaN: logarithm or square root of a negative number, ``x/0``,
    ``0**negative``, a negative number to a non-integer power, ``inf - inf``, ``0*inf``.
    ``log(0)`` and ``log1p(-1)`` are ``-inf``, the limit, as in IEEE arithmetic.
    """

    def __init__(self, vecs: frozenset[str]) -> None:
        self.mp = _mp()
        self.vecs = vecs
        self.nan = self.mp.mpf("nan")

    # helpers that broadcast scalars against vectors (lists)
    def map(self, f: Any, *args: Any) -> Any:
        lists = [a for a in args if isinstance(a, list)]
        if not lists:
            return f(*args)
        n = len(lists[0])
        cols = [a if isinstance(a, list) else [a] * n for a in args]
        return [f(*vals) for vals in zip(*cols)]

    def isnan(self, a: Any) -> bool:
        return bool(self.mp.isnan(a))

    def div(self, a: Any, b: Any) -> Any:
        if self.isnan(a) or self.isnan(b) or b == 0:
            return self.nan
        return a / b

    def power(self, a: Any, b: Any) -> Any:
        mp = self.mp
        if self.isnan(a) or self.isnan(b):
            return self.nan
        if a == 0:
            return mp.mpf(0) if b > 0 else (mp.mpf(1) if b == 0 else self.nan)
        if a < 0:
            if not mp.isfinite(b) or not mp.isint(b):
                return self.nan
            r = mp.power(-a, b)
            return -r if int(b) % 2 else r
        r = mp.power(a, b)
        return r if isinstance(r, mp.mpf) else self.nan

    def log(self, a: Any) -> Any:
        if self.isnan(a) or a < 0:
            return self.nan
        return self.mp.mpf("-inf") if a == 0 else self.mp.log(a)

    def log1p(self, a: Any) -> Any:
        if self.isnan(a) or a < -1:
            return self.nan
        return self.mp.mpf("-inf") if a == -1 else self.mp.log1p(a)

    def sqrt(self, a: Any) -> Any:
        if self.isnan(a) or a < 0:
            return self.nan
        return self.mp.sqrt(a)

    def maximum(self, a: Any, b: Any) -> Any:
        return self.nan if self.isnan(a) or self.isnan(b) else max(a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        return self.nan if self.isnan(a) or self.isnan(b) else min(a, b)

    def sigmoid(self, a: Any) -> Any:
        return 1 / (1 + self.mp.exp(-a))

    # softplus(x) = max(x, 0) + log1p(exp(-|x|)): accurate at any precision, no overflow
    def softplus(self, a: Any) -> Any:
        return self.nan if self.isnan(a) else max(a, 0) + self.mp.log1p(self.mp.exp(-abs(a)))

    # log_sigmoid(x) = min(x, 0) - log1p(exp(-|x|))
    def log_sigmoid(self, a: Any) -> Any:
        return self.nan if self.isnan(a) else min(a, 0) - self.mp.log1p(self.mp.exp(-abs(a)))

    # sigmoid'(x) = e/(1 + e)**2 with e = exp(-|x|): the derivative is even
    def sigmoid_grad(self, a: Any) -> Any:
        if self.isnan(a):
            return self.nan
        e = self.mp.exp(-abs(a))
        return e / (1 + e) ** 2

    # tanh'(x) = 1/cosh(x)**2, never 1 - tanh(x)**2
    def tanh_grad(self, a: Any) -> Any:
        return 1 / self.mp.cosh(a) ** 2

    # bce(x, y) = |x| w + log1p(exp(-|x|)) with w = 1 - y for x >= 0 and w = y for x < 0;
    # at x = +-inf the limit is 0 when w = 0 (finite at infinite logits)
    def bce(self, x: Any, y: Any) -> Any:
        if self.isnan(x) or self.isnan(y):
            return self.nan
        w = 1 - y if x >= 0 else y
        linear = 0 if (w == 0 and self.mp.isinf(x)) else abs(x) * w
        return linear + self.mp.log1p(self.mp.exp(-abs(x)))

    def reduce_max(self, v: list[Any], largest: bool) -> Any:
        if any(self.isnan(a) for a in v):
            return self.nan
        if not v:
            return self.mp.mpf("-inf" if largest else "inf")
        return max(v) if largest else min(v)

    def shifted(self, v: list[Any]) -> tuple[Any, Any, int] | None:
        """(m, sum of exp(v_j - m) over j != argmax, argmax), or None when m is not finite."""
        mp = self.mp
        m = self.reduce_max(v, True)
        if not v or not mp.isfinite(m):
            return None
        k = v.index(m)
        rest = mp.fsum(mp.exp(a - m) for j, a in enumerate(v) if j != k)
        return m, rest, k

    # logsumexp(v) = m + log1p(sum_{j != k} exp(v_j - m)), m = v_k the largest term
    def logsumexp(self, v: list[Any]) -> Any:
        s = self.shifted(v)
        if s is None:
            return self.reduce_max(v, True)  # NaN, -inf (empty or all -inf) or +inf
        m, rest, _ = s
        return m + self.mp.log1p(rest)

    def softmax(self, v: list[Any]) -> list[Any]:
        s = self.shifted(v)
        if s is None:
            return [self.nan] * len(v)
        m, rest, _ = s
        return [self.mp.exp(a - m) / (1 + rest) for a in v]

    def log_softmax(self, v: list[Any]) -> list[Any]:
        s = self.shifted(v)
        if s is None:
            return [self.nan] * len(v)
        m, rest, _ = s
        return [(a - m) - self.mp.log1p(rest) for a in v]

    def __call__(self, e: Expr, env: Mapping[str, Any]) -> Any:
        mp = self.mp
        if isinstance(e, Num):
            return _to_mpf(e.value)
        if isinstance(e, Var):
            return env[e.name]
        if isinstance(e, Neg):
            return self.map(lambda a: -a, self(e.arg, env))
        if isinstance(e, Binary):
            a, b = self(e.left, env), self(e.right, env)
            f = {
                "+": lambda p, q: p + q,
                "-": lambda p, q: p - q,
                "*": lambda p, q: p * q,
                "/": self.div,
                "**": self.power,
            }[e.op]
            return self.map(f, a, b)
        assert isinstance(e, Call)
        args = [self(a, env) for a in e.args]
        name = e.name
        unary = {
            "exp": mp.exp,
            "log": self.log,
            "log1p": self.log1p,
            "expm1": mp.expm1,
            "sqrt": self.sqrt,
            "abs": abs,
            "sin": lambda a: self.nan if not mp.isfinite(a) else mp.sin(a),
            "cos": lambda a: self.nan if not mp.isfinite(a) else mp.cos(a),
            "tanh": mp.tanh,
            "sigmoid": self.sigmoid,
            "softplus": self.softplus,
            "log_sigmoid": self.log_sigmoid,
            "sigmoid_grad": self.sigmoid_grad,
            "tanh_grad": self.tanh_grad,
        }
        if name in unary:
            return self.map(unary[name], args[0])
        if name == "pow":
            return self.map(self.power, *args)
        if name in ("max", "min"):
            if len(args) == 1:
                return self.reduce_max(_as_list(args[0]), name == "max")
            f = self.maximum if name == "max" else self.minimum
            out = args[0]
            for a in args[1:]:
                out = self.map(f, out, a)
            return out
        if name == "sum":
            v = _as_list(args[0])
            return self.nan if any(self.isnan(a) for a in v) else mp.fsum(v)
        if name == "logsumexp":
            return self.logsumexp(_as_list(args[0]))
        if name == "softmax":
            return self.softmax(_as_list(args[0]))
        if name == "log_softmax":
            return self.log_softmax(_as_list(args[0]))
        assert name == "binary_cross_entropy_with_logits"
        return self.map(self.bce, *args)


def _as_list(a: Any) -> list[Any]:
    return a if isinstance(a, list) else [a]


def _mp_inputs(expr: Expr, values: Mapping[str, Any], convert: Any) -> dict[str, Any]:
    names = variables(expr)
    missing = [n for n in names if n not in values]
    if missing:
        raise _messages.expr_missing_values(missing, tuple(values))
    vecs = set(vector_variables(expr))
    env: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for n in names:
        v = values[n]
        if n in vecs:
            items = list(np.asarray(v, dtype=object).ravel()) if not isinstance(v, list) else v
            if np.ndim(v) != 1:
                raise _messages.expr_vector_shape(n, np.shape(v))
            env[n] = [convert(a) for a in items]
            lengths[n] = len(items)
        else:
            if np.ndim(v) != 0:
                raise _messages.expr_scalar_shape(n, np.shape(v))
            env[n] = convert(v.item() if isinstance(v, np.ndarray) else v)
    if len(set(lengths.values())) > 1:
        raise _messages.expr_vector_lengths(lengths)
    return env


def evaluate_mpmath(expr: Expr, values: Mapping[str, Any], *, prec: int = 256) -> Any:
    """Evaluate `expr` at one point in mpmath with `prec` bits, as a real function.

    Parameters
    ----------
    expr : Expr
        A parsed formula.
    values : mapping of str to number or sequence
        One number per scalar variable (float, NumPy scalar, int, Fraction or mpf; floats
        are taken exactly), one 1-D sequence per vector variable.
    prec : int, optional
        Working precision in bits (at least 53).

    Returns
    -------
    mpmath.mpf or list of mpmath.mpf
        A list for a vector formula.

    Notes
    -----
    Every operation is rounded to `prec` bits, so the result is not always right to the
    last bit of a float format: ``log(1 + exp(x))`` at ``x = -200`` is 0 at 256 bits
    because ``1 + exp(-200)`` rounds to 1.  `evaluate_exact` raises the precision until
    the rounding is certain.  Where the real function is undefined the result is NaN (see
    the module notes); stablenn's primitives are computed from their stable formulas, so
    they are accurate at any precision.

    Examples
    --------
    >>> float(evaluate_mpmath(parse("log(x)"), {"x": -1.0}))
    nan
    >>> [float(p) for p in evaluate_mpmath(parse("softmax(v)"), {"v": [0.0, 1000.0]})]
    [0.0, 1.0]
    """
    mpmath = _mp()
    prec = max(int(prec), 53)
    with mpmath.workprec(prec):
        env = _mp_inputs(expr, values, _to_mpf)
        return _MpEval(frozenset(vector_variables(expr)))(expr, env)


# ---------------------------------------------------------------- mpmath intervals


class _Undecided(Exception):
    """An enclosure straddles a point where the function is undefined or not monotone."""


def _nanwrap(f: Any) -> Any:
    """Interval methods: a NaN operand (a float) gives NaN without calling `f`."""

    def g(self: Any, *args: Any) -> Any:
        if any(isinstance(a, float) for a in args):
            return math.nan
        return f(self, *args)

    return g


class _IvEval(_MpEval):
    """The same real function in mpmath interval arithmetic (``mpmath.iv``).

    Every value is an interval that certainly contains the exact result, or the float NaN
    where the function is undefined.  Exact infinities (inputs of +-inf) follow the limit
    rules of IEEE arithmetic.  Functions without an interval version in mpmath are
    composed from those that have one: composing costs precision, never correctness, as
    the enclosures of point inputs shrink when the precision grows.  Where an enclosure
    straddles a point that decides the answer (a logarithm's argument around 0, a
    division by an interval around 0) `_Undecided` asks for more precision.
    """

    def __init__(self, vecs: frozenset[str]) -> None:
        super().__init__(vecs)
        self.iv = self.mp.iv
        self.nan = math.nan

    def isnan(self, a: Any) -> bool:
        return isinstance(a, float)

    def sign(self, a: Any) -> int:
        """+1, -1 or 0 when the whole interval is positive, negative or exactly zero."""
        lo, hi = a.a, a.b
        if lo > 0:
            return 1
        if hi < 0:
            return -1
        if lo == 0 and hi == 0:
            return 0
        raise _Undecided

    def infinite(self, a: Any) -> bool:
        """Whether `a` is exactly +inf or exactly -inf."""
        return bool(self.mp.isinf(a.a) and a.a == a.b)

    def finite(self, r: Any) -> Any:
        """`r` computed from finite operands: its ends must be finite, else undecidable."""
        mp = self.mp
        if not (mp.isfinite(r.a) and mp.isfinite(r.b)):
            raise _Undecided  # a division by an interval around 0
        return r

    def inf_of(self, sign: int) -> Any:
        return self.iv.mpf("inf") if sign > 0 else self.iv.mpf("-inf")

    @_nanwrap
    def add(self, a: Any, b: Any) -> Any:
        ia, ib = self.infinite(a), self.infinite(b)
        if ia and ib:
            return a if a.a == b.a else math.nan  # inf - inf
        if ia or ib:
            return a if ia else b
        return self.finite(a + b)

    @_nanwrap
    def sub(self, a: Any, b: Any) -> Any:
        return self.add(a, -b)

    @_nanwrap
    def mul(self, a: Any, b: Any) -> Any:
        if self.infinite(a) or self.infinite(b):
            s = self.sign(a) * self.sign(b)
            return math.nan if s == 0 else self.inf_of(s)  # 0 * inf is NaN
        return self.finite(a * b)

    @_nanwrap
    def div(self, a: Any, b: Any) -> Any:
        sb = self.sign(b)
        if sb == 0:
            return math.nan  # x/0 is undefined
        ia, ib = self.infinite(a), self.infinite(b)
        if ia and ib:
            return math.nan
        if ia:
            return self.inf_of(self.sign(a) * sb)
        if ib:
            return self.iv.mpf(0)
        return self.finite(a / b)

    @_nanwrap
    def power(self, a: Any, b: Any) -> Any:
        mp, iv = self.mp, self.iv
        sa = self.sign(a)
        if sa == 0:
            sb = self.sign(b)
            return iv.mpf(0) if sb > 0 else (iv.mpf(1) if sb == 0 else math.nan)
        point_b = b.a == b.b
        integer_b = point_b and mp.isfinite(b.a) and mp.isint(b.a)
        if sa < 0:
            # a negative base needs an exact integer exponent: (-a)**n, negated for odd n
            if integer_b:
                r = self.power(-a, b)
                return r if isinstance(r, float) or int(b.a) % 2 == 0 else -r
            if point_b:
                return math.nan
            raise _Undecided
        if self.infinite(b) or self.infinite(a):
            if a.a == a.b and point_b:
                r = mp.power(a.a, b.a)  # limits: 2**inf = inf, 0.5**inf = 0, inf**-1 = 0, 1**inf NaN
                return math.nan if mp.isnan(r) else iv.mpf(r)
            if self.infinite(b) and (a.b < 1 or a.a > 1):
                return iv.mpf(mp.power(a.a, b.a))
            raise _Undecided
        if integer_b and abs(b.a) <= 1 << 20:
            return self.finite(iv.power(a, int(b.a)))
        return self.finite(iv.exp(b * iv.log(a)))

    @_nanwrap
    def exp(self, a: Any) -> Any:
        return self.iv.exp(a)

    @_nanwrap
    def log(self, a: Any) -> Any:
        if a.b < 0:
            return math.nan
        if a.a == 0 and a.b == 0:
            return self.iv.mpf("-inf")
        if a.a <= 0:
            raise _Undecided
        return self.iv.log(a)

    @_nanwrap
    def log1p(self, a: Any) -> Any:
        # log(1 + x): the enclosure of 1 + x only costs precision near x = 0
        return self.log(self.add(self.iv.mpf(1), a))

    @_nanwrap
    def expm1(self, a: Any) -> Any:
        return self.sub(self.iv.exp(a), self.iv.mpf(1))

    @_nanwrap
    def sqrt(self, a: Any) -> Any:
        if a.b < 0:
            return math.nan
        if a.a < 0:
            raise _Undecided
        return self.iv.sqrt(a)

    @_nanwrap
    def absolute(self, a: Any) -> Any:
        return abs(a)

    @_nanwrap
    def trig(self, a: Any, f: Any) -> Any:
        if self.infinite(a):
            return math.nan
        return f(a)

    @_nanwrap
    def tanh(self, a: Any) -> Any:
        # tanh is increasing: enclose it by its values at the two ends
        return self.iv.mpf([self.tanh_point(a.a).a, self.tanh_point(a.b).b])

    def tanh_point(self, x: Any) -> Any:
        # tanh(x) = sign(x) (1 - e)/(1 + e) with e = exp(-2|x|) <= 1: no overflow anywhere
        iv = self.iv
        if x == 0:
            return iv.mpf(0)
        e = iv.exp(-2 * abs(iv.mpf(x)))
        r = (1 - e) / (1 + e)
        return r if x > 0 else -r

    @_nanwrap
    def sigmoid(self, a: Any) -> Any:
        # 1/(1 + exp(-x)); at x = -inf, exp(inf) = inf gives the limit 0
        return self.div(self.iv.mpf(1), self.add(self.iv.mpf(1), self.iv.exp(-a)))

    @_nanwrap
    def softplus(self, a: Any) -> Any:
        return self.log(self.add(self.iv.mpf(1), self.iv.exp(a)))

    @_nanwrap
    def log_sigmoid(self, a: Any) -> Any:
        r = self.softplus(-a)
        return r if isinstance(r, float) else -r

    @_nanwrap
    def sigmoid_grad(self, a: Any) -> Any:
        # e/(1 + e)**2 with e = exp(-|x|)
        e = self.iv.exp(-abs(a))
        return e / (1 + e) ** 2

    @_nanwrap
    def tanh_grad(self, a: Any) -> Any:
        # 4e/(1 + e)**2 with e = exp(-2|x|): sech(x)**2 without overflow
        e = self.iv.exp(-2 * abs(a))
        return 4 * e / (1 + e) ** 2

    @_nanwrap
    def bce(self, x: Any, y: Any) -> Any:
        # x >= 0: x (1 - y) + softplus(-x); x < 0: -x y + softplus(x).  At x = +-inf the
        # limit is 0 when the label multiplying x is exactly 0 (finite at infinite logits).
        iv = self.iv
        s = self.sign(x) if not (x.a < 0 < x.b) else 0
        if s == 0:
            return self.sub(self.softplus(x), self.mul(x, y))
        weight = self.sub(iv.mpf(1), y) if s > 0 else y
        if self.infinite(x) and not isinstance(weight, float) and weight.a == 0 and weight.b == 0:
            return iv.mpf(0)
        linear = self.mul(abs(x), weight)
        return self.add(linear, self.softplus(-abs(x)))

    @_nanwrap
    def maximum(self, a: Any, b: Any) -> Any:
        return self.iv.mpf([max(a.a, b.a), max(a.b, b.b)])

    @_nanwrap
    def minimum(self, a: Any, b: Any) -> Any:
        return self.iv.mpf([min(a.a, b.a), min(a.b, b.b)])

    def reduce_max(self, v: list[Any], largest: bool) -> Any:
        if any(self.isnan(a) for a in v):
            return math.nan
        if not v:
            return self.iv.mpf("-inf" if largest else "inf")
        out = v[0]
        for a in v[1:]:
            out = self.maximum(out, a) if largest else self.minimum(out, a)
        return out

    def total(self, v: list[Any]) -> Any:
        out: Any = self.iv.mpf(0)
        for a in v:
            out = self.add(out, a)
        return out

    def logsumexp(self, v: list[Any]) -> Any:
        return self.log(self.total([self.exp(a) for a in v]))

    def softmax(self, v: list[Any]) -> list[Any]:
        terms = [self.exp(a) for a in v]
        s = self.total(terms)
        return [self.div(t, s) for t in terms]

    def log_softmax(self, v: list[Any]) -> list[Any]:
        s = self.logsumexp(v)
        return [self.sub(a, s) for a in v]

    def __call__(self, e: Expr, env: Mapping[str, Any]) -> Any:
        iv = self.iv
        if isinstance(e, Num):
            return iv.mpf(e.value.numerator) / iv.mpf(e.value.denominator)
        if isinstance(e, Var):
            return env[e.name]
        if isinstance(e, Neg):
            return self.map(lambda a: a if isinstance(a, float) else -a, self(e.arg, env))
        if isinstance(e, Binary):
            a, b = self(e.left, env), self(e.right, env)
            f = {"+": self.add, "-": self.sub, "*": self.mul, "/": self.div, "**": self.power}[e.op]
            return self.map(f, a, b)
        assert isinstance(e, Call)
        args = [self(a, env) for a in e.args]
        name = e.name
        unary = {
            "exp": self.exp,
            "log": self.log,
            "log1p": self.log1p,
            "expm1": self.expm1,
            "sqrt": self.sqrt,
            "abs": self.absolute,
            "sin": lambda a: self.trig(a, iv.sin),
            "cos": lambda a: self.trig(a, iv.cos),
            "tanh": self.tanh,
            "sigmoid": self.sigmoid,
            "softplus": self.softplus,
            "log_sigmoid": self.log_sigmoid,
            "sigmoid_grad": self.sigmoid_grad,
            "tanh_grad": self.tanh_grad,
        }
        if name in unary:
            return self.map(unary[name], args[0])
        if name == "pow":
            return self.map(self.power, *args)
        if name in ("max", "min"):
            if len(args) == 1:
                return self.reduce_max(_as_list(args[0]), name == "max")
            f = self.maximum if name == "max" else self.minimum
            out = args[0]
            for a in args[1:]:
                out = self.map(f, out, a)
            return out
        if name == "sum":
            return self.total(_as_list(args[0]))
        if name == "logsumexp":
            return self.logsumexp(_as_list(args[0]))
        if name == "softmax":
            return self.softmax(_as_list(args[0]))
        if name == "log_softmax":
            return self.log_softmax(_as_list(args[0]))
        assert name == "binary_cross_entropy_with_logits"
        return self.map(self.bce, *args)


def _to_interval(value: Any) -> Any:
    mpmath = _mp()
    if isinstance(value, Fraction):
        return mpmath.iv.mpf(value.numerator) / value.denominator
    v = value if isinstance(value, mpmath.mpf) else float(value)
    if isinstance(v, float) and math.isnan(v):
        return math.nan
    return mpmath.iv.mpf(v)


def evaluate_interval(expr: Expr, values: Mapping[str, Any], *, prec: int = 256) -> Any:
    """An interval that certainly contains the exact value of `expr` at one point.

    Parameters
    ----------
    expr : Expr
        A parsed formula.
    values : mapping of str to number or sequence
        As for `evaluate_mpmath`; values are exact points.
    prec : int, optional
        Working precision in bits of the interval ends.

    Returns
    -------
    tuple of two mpmath.mpf, or float NaN; a list of those for a vector formula
        ``(lo, hi)`` with ``lo <= exact <= hi``; NaN where the real function is
        undefined; ``None`` where this precision cannot decide (an enclosure straddles a
        point where the function is undefined, e.g. ``log`` of an interval around 0).

    Examples
    --------
    >>> lo, hi = evaluate_interval(parse("log(1 + exp(x))"), {"x": -200.0}, prec=256)
    >>> float(lo), float(hi) > 1e-87        # 256 bits cannot see exp(-200) next to 1
    (0.0, True)
    """
    mpmath = _mp()
    prec = max(int(prec), 53)
    old = mpmath.iv.prec
    mpmath.iv.prec = prec
    try:
        env = _mp_inputs(expr, values, _to_interval)
        try:
            out = _IvEval(frozenset(vector_variables(expr)))(expr, env)
        except _Undecided:
            return None
    finally:
        mpmath.iv.prec = old
    return _interval_ends(out)


def _interval_ends(out: Any) -> Any:
    if isinstance(out, list):
        return [_interval_ends(a) for a in out]
    if isinstance(out, float):
        return out
    return (out.a, out.b)


def evaluate_exact(
    expr: Expr,
    values: Mapping[str, Any],
    dtype: Any = "float64",
    *,
    prec: int | None = None,
    max_prec: int = 1 << 14,
) -> Any:
    """The exact value of `expr` at one point, correctly rounded to `dtype`.

    Evaluates in interval arithmetic (`evaluate_interval`), doubling the precision until
    both ends of the enclosure round to the same value of the format (the criterion of
    Herbie's Rival).  That decides cases a fixed precision gets wrong: at ``x = -200``,
    ``log(1 + exp(x))`` is 0 at 256 bits but 1.38e-87 exactly.

    Parameters
    ----------
    expr : Expr
        A parsed formula.
    values : mapping of str to number or sequence
        As for `evaluate_mpmath`.
    dtype : str or dtype
        The format to round to.
    prec : int, optional
        Starting precision in bits (default: the format's precision plus 32).
    max_prec : int, optional
        Give up above this precision.

    Returns
    -------
    float or list of float
        The correctly rounded result (float32 values of bfloat16 as floats), NaN where
        the real function is undefined.

    Raises
    ------
    ValueError
        If the rounding is still undecided at `max_prec` bits (the exact value sits on a
        rounding boundary, or an enclosure keeps straddling a point where the function is
        undefined).

    Examples
    --------
    >>> evaluate_exact(parse("log(1 + exp(x))"), {"x": -200.0})
    1.3838965267367376e-87
    >>> evaluate_exact(parse("sqrt(x**2)"), {"x": -1e300}, "float32")
    inf
    """
    from stablenn.audit._ulp import get_format, round_mpf

    fmt = get_format(dtype)
    p = prec if prec is not None else fmt.precision + 32
    while True:
        ends = evaluate_interval(expr, values, prec=p)
        decided = _decide(ends, fmt, round_mpf)
        if decided is not None:
            return decided
        if p >= max_prec:
            raise _messages.audit_oracle_precision(str(expr), max_prec)
        p = min(2 * p, max_prec)


def _decide(ends: Any, fmt: Any, round_mpf: Any) -> Any:
    if ends is None:
        return None
    if isinstance(ends, list):
        parts = [_decide(a, fmt, round_mpf) for a in ends]
        return None if any(p is None for p in parts) else parts
    if isinstance(ends, float):
        return math.nan
    lo, hi = (round_mpf(end, fmt) for end in ends)
    if lo == hi or (math.isnan(lo) and math.isnan(hi)):
        return hi if hi != 0 else abs(hi)
    return None


# ---------------------------------------------------------------- SymPy


def to_sympy(
    expr: Expr,
    symbols: Mapping[str, Any] | None = None,
    *,
    length: int = 3,
    primitives: str = "definition",
) -> Any:
    """The SymPy expression of `expr`, built from the tree (never from text).

    Parameters
    ----------
    expr : Expr
        A parsed formula.
    symbols : mapping of str to sympy.Symbol or sequence of them, optional
        Symbols to use (e.g. with assumptions such as ``positive=True``).  Missing scalar
        variables become real symbols named after them; missing vector variables become
        `length` real symbols ``v_0, v_1, ...``.
    length : int, optional
        Length of the vector variables not given in `symbols`.
    primitives : {'definition', 'stable'}, optional
        How stablenn's primitives are written: by their textbook definition
        (``softplus(x) = log(1 + exp(x))``) or by the stable formula stablenn evaluates
        (``Max(x, 0) + log(1 + exp(-|x|))``, logsumexp shifted by the largest term...).

    Returns
    -------
    sympy.Expr, or tuple of sympy.Expr for a vector formula

    Examples
    --------
    >>> to_sympy(parse("log1p(exp(x)) - x"))
    -x + log(exp(x) + 1)
    >>> to_sympy(parse("softplus(x)"), primitives="stable")
    log(1 + exp(-Abs(x))) + Max(0, x)
    >>> to_sympy(parse("sum(exp(v))"), length=2)
    exp(v_0) + exp(v_1)
    """
    import sympy

    if primitives not in ("definition", "stable"):
        raise _messages.expr_sympy_primitives(primitives)
    vecs = set(vector_variables(expr))
    env: dict[str, Any] = {}
    for n in variables(expr):
        given = None if symbols is None else symbols.get(n)
        if n in vecs:
            env[n] = list(given) if given is not None else [
                sympy.Symbol(f"{n}_{i}", real=True) for i in range(length)
            ]
        else:
            env[n] = given if given is not None else sympy.Symbol(n, real=True)
    out = _SympyBuild(sympy, primitives == "stable")(expr, env)
    return tuple(out) if isinstance(out, list) else out


class _SympyBuild:
    def __init__(self, sympy: Any, stable: bool) -> None:
        self.sp = sympy
        self.stable = stable

    map = _MpEval.map

    def sigmoid(self, a: Any) -> Any:
        sp = self.sp
        if self.stable:
            # sigma(x) = 1/(1 + e) for x >= 0, e/(1 + e) for x < 0, with e = exp(-|x|)
            e = sp.exp(-sp.Abs(a))
            return sp.Piecewise((1 / (1 + e), a >= 0), (e / (1 + e), True))
        return 1 / (1 + sp.exp(-a))

    def softplus(self, a: Any) -> Any:
        sp = self.sp
        if self.stable:
            return sp.Max(a, 0) + sp.log(1 + sp.exp(-sp.Abs(a)))
        return sp.log(1 + sp.exp(a))

    def log_sigmoid(self, a: Any) -> Any:
        sp = self.sp
        if self.stable:
            return sp.Min(a, 0) - sp.log(1 + sp.exp(-sp.Abs(a)))
        return -sp.log(1 + sp.exp(-a))

    def sigmoid_grad(self, a: Any) -> Any:
        sp = self.sp
        if self.stable:
            e = sp.exp(-sp.Abs(a))
            return e / (1 + e) ** 2
        s = 1 / (1 + sp.exp(-a))
        return s * (1 - s)

    def tanh_grad(self, a: Any) -> Any:
        sp = self.sp
        if self.stable:
            e = sp.exp(-2 * sp.Abs(a))
            return 4 * e / (1 + e) ** 2
        return 1 - sp.tanh(a) ** 2

    def bce(self, x: Any, y: Any) -> Any:
        sp = self.sp
        if self.stable:
            return sp.Max(x, 0) - x * y + sp.log(1 + sp.exp(-sp.Abs(x)))
        s = 1 / (1 + sp.exp(-x))
        return -(y * sp.log(s) + (1 - y) * sp.log(1 - s))

    def shift(self, v: list[Any]) -> Any:
        return self.sp.Max(*v) if self.stable else 0

    def logsumexp(self, v: list[Any]) -> Any:
        sp = self.sp
        m = self.shift(v)
        return m + sp.log(sp.Add(*[sp.exp(a - m) for a in v]))

    def softmax(self, v: list[Any]) -> list[Any]:
        sp = self.sp
        m = self.shift(v)
        total = sp.Add(*[sp.exp(a - m) for a in v])
        return [sp.exp(a - m) / total for a in v]

    def log_softmax(self, v: list[Any]) -> list[Any]:
        sp = self.sp
        m = self.shift(v)
        total = sp.Add(*[sp.exp(a - m) for a in v])
        return [a - m - sp.log(total) for a in v]

    def __call__(self, e: Expr, env: Mapping[str, Any]) -> Any:
        sp = self.sp
        if isinstance(e, Num):
            return sp.Rational(e.value.numerator, e.value.denominator)
        if isinstance(e, Var):
            return env[e.name]
        if isinstance(e, Neg):
            return self.map(lambda a: -a, self(e.arg, env))
        if isinstance(e, Binary):
            a, b = self(e.left, env), self(e.right, env)
            f = {
                "+": lambda p, q: p + q,
                "-": lambda p, q: p - q,
                "*": lambda p, q: p * q,
                "/": lambda p, q: p / q,
                "**": lambda p, q: p**q,
            }[e.op]
            return self.map(f, a, b)
        assert isinstance(e, Call)
        args = [self(a, env) for a in e.args]
        name = e.name
        unary = {
            "exp": sp.exp,
            "log": sp.log,
            "log1p": lambda a: sp.log(1 + a),
            "expm1": lambda a: sp.exp(a) - 1,
            "sqrt": sp.sqrt,
            "abs": sp.Abs,
            "sin": sp.sin,
            "cos": sp.cos,
            "tanh": sp.tanh,
            "sigmoid": self.sigmoid,
            "softplus": self.softplus,
            "log_sigmoid": self.log_sigmoid,
            "sigmoid_grad": self.sigmoid_grad,
            "tanh_grad": self.tanh_grad,
        }
        if name in unary:
            return self.map(unary[name], args[0])
        if name == "pow":
            return self.map(lambda p, q: p**q, *args)
        if name in ("max", "min"):
            f = sp.Max if name == "max" else sp.Min
            if len(args) == 1:
                return f(*_as_list(args[0]))
            return self.map(f, *args)
        if name == "sum":
            return sp.Add(*_as_list(args[0]))
        if name == "logsumexp":
            return self.logsumexp(_as_list(args[0]))
        if name == "softmax":
            return self.softmax(_as_list(args[0]))
        if name == "log_softmax":
            return self.log_softmax(_as_list(args[0]))
        assert name == "binary_cross_entropy_with_logits"
        return self.map(self.bce, *args)
