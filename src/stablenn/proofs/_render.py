"""Render proof expressions: one line of Unicode (or ASCII) math, and MathML.

The terminal wants each step on one line, so the Unicode printer is linear: ``e^(x − a)``,
``Σᵢ₌₁ᴺ e^xᵢ``, ``|x|``, ``max(x, 0)``, ``d/dx tanh(x)``.  The MathML printer is SymPy's
presentation printer with the named functions shown as ``σ`` and ``max``, and piecewise
definitions shown as a brace with one row per branch.
"""

from __future__ import annotations

import html.entities
import re
from typing import Any

import sympy
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.pretty.pretty_symbology import pretty_symbol
from sympy.printing.str import StrPrinter

from ._ascii import _SUB, _SUP, to_ascii

__all__ = ["ascii_line", "mathml", "to_ascii", "unicode_line"]

def _script(text: str, table: dict[str, str]) -> str | None:
    text = text.replace("−", "-").replace(" ", "")
    if all(ch in table for ch in text):
        return "".join(table[ch] for ch in text)
    return None


class _LinePrinter(StrPrinter):
    """SymPy's str printer with readable one-line Unicode math."""

    printmethod = "_unicode_line"

    def _print_Symbol(self, expr: Any) -> str:
        return pretty_symbol(expr.name)

    _print_Dummy = _print_Symbol

    def _print_MatrixSymbol(self, expr: Any) -> str:
        return pretty_symbol(expr.name)

    def _print_IndexedBase(self, expr: Any) -> str:
        return pretty_symbol(expr.label.name)

    def _print_Indexed(self, expr: Any) -> str:
        base = self._print(expr.base)
        indices = [self._print(i) for i in expr.indices]
        sub = _script("".join(indices), _SUB) if all(len(i) == 1 for i in indices) else None
        if sub is not None:
            return base + sub
        return f"{base}[{', '.join(indices)}]"

    def _print_exp(self, expr: Any) -> str:
        power = self._print(expr.args[0])
        sup = _script(power, _SUP)
        if sup is not None and " " not in power:
            return "e" + sup
        if expr.args[0].is_Atom or isinstance(expr.args[0], sympy.Indexed):
            return "e^" + power
        return f"e^({power})"

    def _print_Pow(self, expr: Any, rational: bool = False) -> str:
        base, exp = expr.args
        if exp is sympy.S.Half:
            return f"√({self._print(base)})"
        if exp.is_Number and exp < 0 and not base.is_Number:
            inner = sympy.Pow(base, -exp) if exp != -1 else base
            return f"1/{self.parenthesize(inner, PRECEDENCE['Mul'], strict=False)}"
        b = self.parenthesize(base, PRECEDENCE["Pow"], strict=True)
        if isinstance(base, sympy.Function) and not isinstance(base, sympy.exp):
            b = self._print(base)
        if exp.is_Integer:
            return b + (_script(str(exp), _SUP) or f"^{exp}")
        e = self._print(exp)
        return f"{b}^{e}" if exp.is_Atom else f"{b}^({e})"

    def _print_Add(self, expr: Any, order: Any = None) -> str:
        args = list(expr.args)
        if sympy.Add(*args).args == expr.args:  # SymPy's own order: lead with a positive term
            pos = [a for a in args if not a.could_extract_minus_sign()]
            neg = [a for a in args if a.could_extract_minus_sign()]
            args = pos + neg
            if all(t.is_Number or isinstance(t, (sympy.Symbol, sympy.Indexed)) for t in args):
                # k + 1, N − 1: a plain variable before the number
                args = [t for t in args if not t.is_Number] + [t for t in args if t.is_Number]
                if args[0].could_extract_minus_sign() and not args[-1].could_extract_minus_sign():
                    args = args[-1:] + args[:-1]
        return super()._print_Add(sympy.Add(*args, evaluate=False), order="none")

    def _print_Mul(self, expr: Any) -> str:
        if sympy.Mul(*expr.args) == expr:
            text = super()._print_Mul(expr).replace("*", "·")
        else:  # an unevaluated product: keep the author's factors, in order
            args, sign = list(expr.args), ""
            if len(args) > 1 and args[0] == -1:
                args, sign = args[1:], "-"
            pieces: list[str] = []
            for f in args:
                if isinstance(f, sympy.Pow) and f.exp == -1 and pieces:
                    pieces[-1] += "/" + self.parenthesize(f.base, PRECEDENCE["Mul"], strict=False)
                    continue
                piece = self.parenthesize(f, PRECEDENCE["Mul"], strict=True)
                if piece.startswith("-"):
                    piece = f"({piece})"
                pieces.append(piece)
            text = sign + "·".join(pieces)
        # a numeric coefficient reads best glued to what it multiplies (2x, 4σ(2x)), and so
        # does a product of one-letter variables (xy)
        text = re.sub(r"(?<![\w./^])(\d+)·(?=[^\d(])", r"\1", text)
        return re.sub(r"(?<![\w'])([a-zA-Zα-ω])·(?=[a-zA-Zα-ω](?![\w(]))", r"\1", text)

    def _print_Abs(self, expr: Any) -> str:
        return f"|{self._print(expr.args[0])}|"

    def _print_MinMaxBase(self, expr: Any) -> str:
        args = sorted(expr.args, key=lambda a: (a.is_Number, str(a)))
        name = "max" if isinstance(expr, sympy.Max) else "min"
        return f"{name}({', '.join(self._print(a) for a in args)})"

    _print_Max = _print_MinMaxBase
    _print_Min = _print_MinMaxBase

    def _print_sigma(self, expr: Any) -> str:
        return f"σ({self._print(expr.args[0])})"

    def _print_Derivative(self, expr: Any) -> str:
        parts = []
        for var, count in expr.variable_count:
            v = self._print(var)
            parts.append(f"d/d{v}" if count == 1 else f"d{_script(str(count), _SUP)}/d{v}{_script(str(count), _SUP)}")
        inner = self._print(expr.expr)
        if isinstance(expr.expr, (sympy.Add, sympy.Mul, sympy.Pow)) or "/" in inner:
            inner = f"[{inner}]"
        return " ".join(parts) + " " + inner

    def _print_Sum(self, expr: Any) -> str:
        out = self.parenthesize(expr.function, PRECEDENCE["Mul"], strict=True)
        for index, lo, hi in reversed(expr.limits):
            i, a, b = self._print(index), self._print(lo), self._print(hi)
            sub, sup = _script(f"{i}={a}", _SUB), _script(b, _SUP)
            if sub is not None and sup is not None:
                out = f"Σ{sub}{sup} {out}"
            else:
                out = f"Σ[{i}={a}..{b}] {out}"
        return out

    def _print_Piecewise(self, expr: Any) -> str:
        rows = []
        for piece, cond in expr.args:
            tail = "otherwise" if cond is sympy.true else "if " + self._print(cond)
            rows.append(f"{self._print(piece)} {tail}")
        return "{" + "; ".join(rows) + "}"

    def _print_Relational(self, expr: Any) -> str:
        ops = {"==": "=", ">=": "≥", "<=": "≤", "!=": "≠", ">": ">", "<": "<"}
        return f"{self._print(expr.lhs)} {ops[expr.rel_op]} {self._print(expr.rhs)}"

    def _print_Equality(self, expr: Any) -> str:
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_And(self, expr: Any) -> str:
        return " ∧ ".join(self.parenthesize(a, precedence(expr)) for a in expr.args)

    def _print_Not(self, expr: Any) -> str:
        return f"¬({self._print(expr.args[0])})"

    def _print_BooleanFalse(self, expr: Any) -> str:
        return "false"

    def _print_BooleanTrue(self, expr: Any) -> str:
        return "true"

    def _print_OneMatrix(self, expr: Any) -> str:
        return "𝟏"

    def _print_ZeroMatrix(self, expr: Any) -> str:
        return "0"

    def _print_MatMul(self, expr: Any) -> str:
        return "".join(self.parenthesize(a, precedence(expr), strict=True) for a in expr.args)

    def _print_Transpose(self, expr: Any) -> str:
        return self.parenthesize(expr.arg, PRECEDENCE["Pow"]) + "ᵀ"


def unicode_line(expr: Any) -> str:
    """One line of readable Unicode math for a SymPy expression."""
    text = _LinePrinter({"order": "none"}).doprint(expr)
    return text.replace("-", "−")


def ascii_line(expr: Any) -> str:
    """One line of plain ASCII for terminals that cannot show Unicode (SymPy's str form)."""
    if isinstance(expr, sympy.Equality):
        return f"{ascii_line(expr.lhs)} = {ascii_line(expr.rhs)}"
    return sympy.sstr(expr, order="none")


class _MathMLPrinter(MathMLPresentationPrinter):
    """SymPy's presentation MathML printer with max/min and piecewise braces."""

    def _print_Max(self, expr: Any) -> Any:
        return self._print(sympy.Function("max")(*sorted(expr.args, key=lambda a: a.is_Number)))

    def _print_Min(self, expr: Any) -> Any:
        return self._print(sympy.Function("min")(*sorted(expr.args, key=lambda a: a.is_Number)))

    def _print_OneMatrix(self, expr: Any) -> Any:  # SymPy 1.14 writes a broken entity here
        one = self.dom.createElement("mn")
        one.appendChild(self.dom.createTextNode("𝟏"))
        return one

    def _print_Piecewise(self, expr: Any) -> Any:
        row = self.dom.createElement("mrow")
        brace = self.dom.createElement("mo")
        brace.appendChild(self.dom.createTextNode("{"))
        row.appendChild(brace)
        table = self.dom.createElement("mtable")
        table.setAttribute("columnalign", "left")
        for piece, cond in expr.args:
            tr = self.dom.createElement("mtr")
            for cell in (piece, cond):
                td = self.dom.createElement("mtd")
                if cell is sympy.true:
                    text = self.dom.createElement("mtext")
                    text.appendChild(self.dom.createTextNode("otherwise"))
                    td.appendChild(text)
                elif cell is piece:
                    td.appendChild(self._print(cell))
                else:
                    text = self.dom.createElement("mtext")
                    text.appendChild(self.dom.createTextNode("if\u00a0"))
                    inner = self.dom.createElement("mrow")
                    inner.appendChild(text)
                    inner.appendChild(self._print(cell))
                    td.appendChild(inner)
                tr.appendChild(td)
            table.appendChild(tr)
        row.appendChild(table)
        return row


def _numeric_entity(match: re.Match[str]) -> str:
    char = html.entities.html5.get(match.group(1) + ";")
    if char is None:  # pragma: no cover - SymPy emits only HTML5 entities
        return match.group(0)
    return "".join(f"&#x{ord(c):x};" for c in char)


def mathml(expr: Any) -> str:
    """Presentation MathML (the content of a ``<math>`` element) for a SymPy expression.

    Named entities (``&InvisibleTimes;``) are written as numeric references, so the
    result is well-formed XML as well as HTML.
    """
    text = _MathMLPrinter({"order": "none"}).doprint(expr)
    return re.sub(r"&([A-Za-z][A-Za-z0-9]*);", _numeric_entity, text)

