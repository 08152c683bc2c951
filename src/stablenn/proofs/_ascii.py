"""Plain-ASCII transliteration of the proofs' Unicode (light: imports nothing heavy).

Used by ``stablenn prove --ascii`` and ``--list`` when the terminal cannot show Unicode.
"""

from __future__ import annotations

__all__ = ["to_ascii"]

_SUB = dict(zip("0123456789+-=()aeoxhklmnpstijruv", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜᵢⱼᵣᵤᵥ"))
_SUP = dict(
    zip(
        "0123456789+-=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVW",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂ",
    )
)


_PLAIN = {
    "σ": "sigma", "Σ": "sum", "α": "alpha", "β": "beta", "λ": "lambda",
    "−": "-", "·": "*", "′": "'", "≥": ">=", "≤": "<=", "≠": "!=", "∈": "in", "ℝ": "R",
    "ℕ": "N", "…": "...", "∧": " and ", "¬": "not ", "𝟏": "1", "×": "x", "→": "->", "↳": "->",
    "✓": "ok", "✗": "XX", "⊤": "true", "√": "sqrt",
}
_FROM_SUB = {v: k for k, v in _SUB.items()}
_FROM_SUP = {v: k for k, v in _SUP.items()}


def to_ascii(text: str) -> str:
    """Transliterate the Unicode of rules and titles: ``e⁻ˣ`` -> ``e^(-x)``, ``xₖ`` -> ``x_k``."""
    out: list[str] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        for table, mark in ((_FROM_SUP, "^"), (_FROM_SUB, "_")):
            if ch in table:
                end = pos
                while end < len(text) and text[end] in table:
                    end += 1
                run = "".join(table[c] for c in text[pos:end])
                out.append(mark + (run if len(run) == 1 else f"({run})"))
                pos = end
                break
        else:
            out.append(_PLAIN.get(ch, ch if ord(ch) < 128 else "?"))
            pos += 1
    return "".join(out)


