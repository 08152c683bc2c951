"""The list of proofs: name, where it comes from, title (Unicode). Light: imports nothing.

``stablenn prove --list`` and the error for an unknown name read this table without
loading SymPy; ``_catalogue`` builds the proof objects for the same names, in this order.
"""

from __future__ import annotations

__all__ = ["INDEX", "NAMES"]

#: (name, problem, title), in the order of the exercise sheet
INDEX: tuple[tuple[str, str, str], ...] = (
    ("affine-composition", "Problem 1", "two affine layers are one affine layer"),
    ("affine-activation", "Problem 1", "a layer with an affine activation is an affine map"),
    ("affine-network-depth", "Problem 1", "a network of affine layers of any depth is one affine map"),
    ("xor-not-affine", "Problem 1", "no affine classifier separates XOR"),
    ("sigmoid-tanh", "Problem 2", "σ(x) = (1 + tanh(x/2))/2"),
    ("sigmoid-layer-as-tanh", "Problem 2", "a sigmoid hidden layer equals a tanh layer with halved weights"),
    ("tanh-sigmoid", "Problem 2", "tanh(x) = 2σ(2x) − 1"),
    ("tanh-layer-as-sigmoid", "Problem 2", "a tanh hidden layer equals a sigmoid layer with doubled weights"),
    ("tanh-derivative", "Problem 3", "tanh′(x) = 1 − tanh(x)², derived from the definition"),
    ("sigmoid-derivative", "Problem 3", "σ′(x) = σ(x)(1 − σ(x)), derived from the definition"),
    ("sigmoid-symmetry", "Problem 3", "1 − σ(x) = σ(−x)"),
    ("sigmoid-derivative-from-input", "Problem 3", "σ′(x) = σ(x)σ(−x): no cancellation in 1 − σ"),
    ("tanh-derivative-from-input", "Problem 3", "tanh′(x) = 4σ(2x)σ(−2x): no cancellation in 1 − tanh²"),
    ("logsumexp-shift", "Problem 4", "log-sum-exp is unchanged by any shift a"),
    ("softmax-shift", "Problem 5", "softmax is unchanged by any shift a"),
    ("bce-logits", "Problem 6", "binary cross-entropy with logits in its overflow-free form"),
    ("softplus-stable", "Stable forms", "softplus(x) = max(x, 0) + log1p(e^(−|x|))"),
    ("log-sigmoid", "Stable forms", "log σ(x) = −softplus(−x) = min(x, 0) − log1p(e^(−|x|))"),
    ("sigmoid-two-branch", "Stable forms", "the two-branch sigmoid: exp never overflows"),
    ("logsumexp-dominant", "Stable forms", "log-sum-exp with a dominant term, in log1p form"),
    ("bce-stablenn", "Stable forms", "the weighted BCE stablenn evaluates, from its definition"),
    ("bce-problem-6-form", "Stable forms", "stablenn's BCE equals Problem 6's form"),
)

NAMES: tuple[str, ...] = tuple(name for name, _, _ in INDEX)
