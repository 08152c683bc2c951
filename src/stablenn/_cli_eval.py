"""``stablenn eval FUNCTION VALUES... [--dtype D]``: the result next to its exact value."""

from __future__ import annotations

import argparse
import sys
from typing import Any

ELEMENTWISE = (
    "sigmoid", "log_sigmoid", "softplus", "logit", "tanh", "sigmoid_grad", "tanh_grad",
    "sigmoid_grad_from_output", "tanh_grad_from_output", "sigmoid_via_tanh", "tanh_via_sigmoid",
)
VECTOR = ("logsumexp", "softmax", "log_softmax")
DTYPES = ("float16", "float32", "float64")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a function and print the exact value beside it",
        description="Evaluate a stablenn function on the given values (an elementwise function on "
        "each value; logsumexp, softmax and log_softmax on the values as one vector) and print "
        "the result, the exact value from the mpmath oracle, and the error in ULP.",
    )
    p.add_argument("function", help=f"one of: {', '.join(ELEMENTWISE + VECTOR)}")
    p.add_argument("values", nargs="+", help="numbers (inf, -inf and nan accepted)")
    p.add_argument("--dtype", default="float64", help=f"one of {', '.join(DTYPES)} (default float64)")
    p.set_defaults(func=run)


def _floats(texts: list[str]) -> list[float] | str:
    out = []
    for t in texts:
        try:
            out.append(float(t))
        except ValueError:
            return t
    return out


def run(args: argparse.Namespace) -> int:
    name, dtype = args.function, args.dtype
    if name not in ELEMENTWISE + VECTOR:
        print(f"stablenn eval: unknown function {name!r}; accepted: {', '.join(ELEMENTWISE + VECTOR)}", file=sys.stderr)
        return 2
    if dtype not in DTYPES:
        print(f"stablenn eval: unknown --dtype {dtype!r}; accepted: {', '.join(DTYPES)}", file=sys.stderr)
        return 2
    values = _floats(args.values)
    if isinstance(values, str):
        print(f"stablenn eval: {values!r} is not a number; give decimal numbers, inf, -inf or nan", file=sys.stderr)
        return 2
    import numpy as np

    import stablenn
    from stablenn.audit import _oracle, _ulp

    with np.errstate(over="ignore"):
        x = np.asarray(values, dtype=np.float64).astype(dtype)
    got = np.asarray(getattr(stablenn, name)(x), dtype=np.float64).reshape(-1)
    if name in ELEMENTWISE:
        exact = np.asarray(_oracle.elementwise(name, x, dtype), dtype=np.float64)
        inputs = [f"{v!r}" for v in x.astype(np.float64).tolist()]
        digits = [_digits(_oracle.exact_elementwise(name, float(v))) for v in x.astype(np.float64).tolist()]
    elif name == "logsumexp":
        exact = np.asarray([_oracle.logsumexp(x, dtype)[0]], dtype=np.float64)
        inputs = ["[" + ", ".join(repr(v) for v in x.astype(np.float64).tolist()) + "]"]
        digits = [None]
    else:
        exact = np.asarray(getattr(_oracle, name)(x, dtype), dtype=np.float64)
        inputs = [f"component {i}" for i in range(x.size)]
        digits = [None] * x.size
    ulps = _ulp.ulp_distance(got, exact, dtype)
    print(f"{name} in {dtype}")
    print(f"{'input':>26}  {'stablenn':>24}  {'exact (rounded to ' + dtype + ')':>28}  ulp")
    for inp, g, e, u, d in zip(inputs, got.tolist(), exact.tolist(), ulps.tolist(), digits):
        print(f"{inp:>26}  {g!r:>24}  {e!r:>28}  {u:g}")
        if d is not None:
            print(f"{'':>26}  {'exact to 30 digits:':>24}  {d}")
    return 0


def _digits(value: Any) -> str:
    import mpmath

    return mpmath.nstr(value, 30)
