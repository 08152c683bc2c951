"""``stablenn audit``: how wrong a function or a formula is, where, why, and what to write.

    stablenn audit softplus --dtype float32
    stablenn audit "log(1 + exp(x))" --dtype float32 --plot softplus.svg
    stablenn audit "sqrt(x**2)" --range -1e300:1e300
    stablenn audit sigmoid --grad
    stablenn audit tanh --dtype float32 --exhaustive
    stablenn audit --all --check --samples 300

Exit codes: 0 done (and, with ``--check``, every budget met), 1 a budget exceeded
(``--check``), 2 bad input: one report on stderr, never a traceback.  Nothing heavy is
imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "run"]

_DTYPES = ("float16", "bfloat16", "float32", "float64")
_FORMATS = ("table", "json", "markdown")


def register(sub: Any) -> None:
    """Add the ``audit`` subcommand to the ``stablenn`` parser."""
    p = sub.add_parser(
        "audit",
        help="measure a function's or a formula's error against exact arithmetic",
        description=(
            "Measure the floating-point error of a stablenn function, of the naive textbook formula "
            "and of each installed peer (NumPy, SciPy, PyTorch, JAX, TensorFlow), or of a formula you "
            "type, against the correctly rounded exact value from mpmath; find the input intervals where "
            "each breaks and name the cause; suggest stable rewrites of a formula."
        ),
        epilog=(
            "FUNCTION is a public function of stablenn (sigmoid, softplus, logsumexp, ...) or a formula "
            "in quotes: numbers, variables, + - * / **, exp log log1p expm1 sqrt abs sin cos tanh sigmoid "
            "pow max min sum (sum(v) makes v a vector). Exit codes: 0 done, 1 a budget exceeded (--check), "
            "2 bad input."
        ),
    )
    p.add_argument("subject", nargs="?", metavar="FUNCTION", help="a stablenn function, or a formula in quotes")
    p.add_argument("--dtype", default=None, help="float16, bfloat16, float32 or float64 (default float64; float32 with --exhaustive; all four with --all)")
    p.add_argument("--impl", action="append", default=None, metavar="NAMES",
                   help="implementations, comma-separated: stablenn, naive, numpy, scipy, torch, jax, tensorflow, or all (default: every one available)")
    p.add_argument("--samples", default=None, metavar="N",
                   help="inputs: scalars (default 20000), vectors (2000), loss elements (20000) or rows (1000)")
    p.add_argument("--seed", default="0", metavar="S", help="seed of the input samplers (default 0)")
    p.add_argument("--format", default="table", metavar="FORMAT", help="table, json or markdown (default table)")
    p.add_argument("--plot", default=None, metavar="FILE", help="write the error against the input to FILE (.png or .svg)")
    p.add_argument("--range", action="append", default=None, metavar="[NAME=]LO:HI",
                   help="sample only LO <= NAME <= HI (all scalar variables without NAME); repeatable")
    p.add_argument("--threshold", default="1", metavar="ULP", help="error above which an input is bad for the intervals (default 1)")
    p.add_argument("--grad", action="store_true", help="audit the derivative d/dx of an elementwise function")
    p.add_argument("--exhaustive", action="store_true", help="run every float32 input of a function of one scalar input")
    p.add_argument("--all", action="store_true", help="audit every function with a budget, in every dtype")
    p.add_argument("--check", action="store_true", help="exit 1 if stablenn exceeds a budget of the budget table")
    p.add_argument("--processes", default=None, metavar="N", help="worker processes (default: every core)")
    p.add_argument("--chunk", default=None, metavar="N", help=argparse.SUPPRESS)  # exhaustive chunk size (tests)
    # `--range -1e300:1e300`: a value that starts with '-' and a digit or '.' is a value, not
    # an option (argparse's own test accepts only plain negative numbers like -2 or -.5)
    import re

    p._negative_number_matcher = re.compile(r"^-\.?\d")
    p.set_defaults(func=run)


class _BadInput(Exception):
    pass


def _fail(message: str) -> int:
    print(f"stablenn audit: error: {message}", file=sys.stderr)
    return 2


def _int(text: str | None, name: str, default: int | None, *, minimum: int = 1) -> int | None:
    from stablenn import _messages

    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        if name == "--samples":
            raise _BadInput(str(_messages.audit_bad_samples(text)).replace("`samples`", "`--samples`"))
        if name == "--processes":
            raise _BadInput(str(_messages.audit_bad_processes(text)))
        raise _BadInput(f"`{name}` must be an integer >= {minimum}; got {text!r}.")
    return value


def _impls(values: list[str] | None) -> list[str] | None:
    from stablenn import _messages

    from ._peers import ALL_IMPLS

    if values is None:
        return None
    names: list[str] = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if not part:
                continue
            if part == "all":
                return None
            if part not in ALL_IMPLS:
                raise _BadInput(str(_messages.audit_unknown_impl(part, ALL_IMPLS)))
            if part not in names:
                names.append(part)
    if not names:
        raise _BadInput(str(_messages.audit_unknown_impl("", ALL_IMPLS)))
    return names


def _subject(text: str) -> tuple[str, Any]:
    """``("function", name)`` or ``("formula", Expr)``; refuses unknown names."""
    import difflib
    import re

    from stablenn import _messages

    from ._engine import FUNCTIONS
    from ._expr import parse

    if text in FUNCTIONS:
        return "function", text
    if re.fullmatch(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*", text):
        close = difflib.get_close_matches(text.strip(), FUNCTIONS, n=2)
        raise _BadInput(str(_messages.audit_unknown_subject(text, FUNCTIONS, close)))
    try:
        return "formula", parse(text)
    except (ValueError, TypeError) as exc:
        raise _BadInput(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Run ``stablenn audit`` with parsed arguments; the exit code."""
    try:
        plan = _plan(args)
    except _BadInput as exc:
        return _fail(str(exc))
    except (ValueError, TypeError) as exc:  # messages of stablenn._messages
        return _fail(str(exc))
    return _execute(plan)


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    from stablenn import _messages

    plan: dict[str, Any] = {}
    fmt = args.format
    if fmt not in _FORMATS:
        raise _BadInput(f"`--format` must be one of {', '.join(_FORMATS)}; got {fmt!r}.")
    plan["format"] = fmt
    if args.dtype is not None and args.dtype not in _DTYPES:
        raise _BadInput(str(_messages.audit_cli_dtype(args.dtype, _DTYPES)))
    plan["samples"] = _int(args.samples, "--samples", None)
    plan["seed"] = _int(args.seed, "--seed", 0, minimum=0)
    plan["processes"] = _int(args.processes, "--processes", None)
    plan["chunk"] = _int(args.chunk, "--chunk", None)
    try:
        threshold = float(args.threshold)
    except ValueError:
        threshold = float("nan")
    if not (threshold >= 0 and threshold != float("inf")):
        raise _BadInput(str(_messages.audit_bad_threshold(args.threshold)))
    plan["threshold"] = threshold
    plan["impls"] = _impls(args.impl)
    # with --all, no --impl means stablenn alone (the budget check); --impl all, every one
    plan["all_impls"] = args.impl is not None and plan["impls"] is None
    plan["check"] = args.check
    plan["plot"] = args.plot
    if args.plot is not None and not args.plot.lower().endswith((".png", ".svg")):
        raise _BadInput(str(_messages.audit_plot_suffix(args.plot)))
    for flag_a, flag_b in (("all", "grad"), ("all", "exhaustive"), ("grad", "exhaustive"), ("all", "plot")):
        if getattr(args, flag_a) and getattr(args, flag_b):
            raise _BadInput(str(_messages.audit_option_conflict(f"--{flag_a}", f"--{flag_b}")))
    from ._engine import parse_range

    ranges: dict[str | None, tuple[float, float]] = {}
    for text in args.range or []:
        name, lo, hi = parse_range(text)
        ranges[name] = (lo, hi)
    plan["ranges"] = ranges
    if args.all:
        if args.subject is not None:
            raise _BadInput(str(_messages.audit_all_with_subject(args.subject)))
        if ranges:
            raise _BadInput(str(_messages.audit_option_conflict("--all", "--range")))
        plan["mode"] = "all"
        plan["dtypes"] = [args.dtype] if args.dtype else list(_DTYPES)
        return plan
    if args.subject is None:
        raise _BadInput(str(_messages.audit_missing_subject()))
    kind, subject = _subject(args.subject)
    plan["subject"] = subject
    if args.exhaustive:
        from ._exhaustive import EXHAUSTIVE_FUNCTIONS

        if kind != "function" or subject not in EXHAUSTIVE_FUNCTIONS:
            raise _BadInput(str(_messages.audit_exhaustive_subject(str(subject), EXHAUSTIVE_FUNCTIONS)))
        dtype = args.dtype or "float32"
        if dtype != "float32":
            raise _BadInput(str(_messages.audit_exhaustive_dtype(dtype)))
        plan["mode"] = "exhaustive"
        plan["dtype"] = dtype
        plan["bounds"] = _function_bounds(subject, ranges, dtype)
        _check_impls(subject, dtype, plan["impls"], grad=False)
        return plan
    dtype = args.dtype or "float64"
    plan["dtype"] = dtype
    if args.grad:
        from ._engine import VECTOR_GRADIENTS, grad_functions

        if kind != "function" or subject not in grad_functions():
            raise _BadInput(str(_messages.audit_grad_function(str(args.subject), grad_functions())))
        if subject in VECTOR_GRADIENTS and dtype not in ("float32", "float64"):
            raise _BadInput(str(_messages.audit_impl_lacks_dtype(f"{subject} gradient", dtype, ("float32", "float64"))))
        plan["mode"] = "grad"
        plan["bounds"] = _function_bounds(subject, ranges, dtype)
        return plan
    if kind == "function":
        plan["mode"] = "function"
        plan["bounds"] = _function_bounds(subject, ranges, dtype)
        _check_impls(subject, dtype, plan["impls"], grad=False)
        return plan
    if plan["impls"] is not None:
        raise _BadInput(str(_messages.audit_option_conflict("--impl", "a formula (it is audited as written and as rewritten)")))
    plan["mode"] = "formula"
    plan["text"] = args.subject
    from ._engine import _inward
    from ._expr import variables, vector_variables

    names = variables(subject)
    if not names:
        raise _BadInput(str(_messages.audit_formula_constant(args.subject)))
    scalars = tuple(v for v in names if v not in vector_variables(subject))
    for key, (lo, hi) in ranges.items():
        if key is None and not scalars:
            raise _BadInput(str(_messages.audit_range_not_scalar(repr(args.subject))))
        if key is not None and key not in scalars:
            raise _BadInput(str(_messages.audit_range_variable(key, scalars)))
        _inward(lo, hi, dtype, f"{key + '=' if key else ''}{lo!r}:{hi!r}")
    return plan


def _function_bounds(function: str, ranges: dict[str | None, tuple[float, float]], dtype: str) -> tuple[float, float] | None:
    from stablenn import _messages

    from . import _oracle
    from ._engine import _inward

    if not ranges:
        return None
    if function not in _oracle.ELEMENTWISE:
        raise _BadInput(str(_messages.audit_range_not_scalar(function)))
    (key, (lo, hi)), *rest = ranges.items()
    if rest or key not in (None, "x"):
        raise _BadInput(str(_messages.audit_range_variable(str(key if key not in (None, "x") else rest[0][0]), ("x",))))
    return _inward(lo, hi, dtype, f"{lo!r}:{hi!r}")


def _check_impls(function: str, dtype: str, names: list[str] | None, *, grad: bool) -> None:
    from ._peers import implementations

    if names is not None:
        implementations(function, dtype, names)  # raises the one-line refusals


def _execute(plan: dict[str, Any]) -> int:
    mode = plan["mode"]
    if mode == "all":
        return _run_all(plan)
    if mode == "exhaustive":
        return _run_exhaustive(plan)
    from . import _engine

    common = {"samples": plan["samples"], "seed": plan["seed"], "threshold": plan["threshold"], "processes": plan["processes"]}
    if mode == "function":
        audit = _engine.audit_function(plan["subject"], plan["dtype"], impls=plan["impls"], bounds=plan["bounds"], **common)
    elif mode == "grad":
        try:
            audit = _engine.audit_gradient(plan["subject"], plan["dtype"], impls=plan["impls"], bounds=plan["bounds"], **common)
        except (ValueError, TypeError) as exc:
            return _fail(str(exc))
    else:
        audit = _engine.audit_formula(plan["text"], plan["dtype"], ranges=plan["ranges"], **common)
    _emit([audit], plan)
    if plan["plot"]:
        from ._plot import plot_audit

        try:
            plot_audit(audit, plan["plot"])
        except OSError as exc:
            from stablenn import _messages

            return _fail(str(_messages.audit_plot_write(plan["plot"], exc.strerror or str(exc))))
        print(f"plot written to {plan['plot']}", file=sys.stderr)
    if plan["check"]:
        over = _over_budget([audit])
        for line in over:
            print(f"OVER BUDGET: {line}", file=sys.stderr)
        return 1 if over else 0
    return 0


def _emit(audits: list[Any], plan: dict[str, Any], *, check: dict[str, Any] | None = None) -> None:
    from ._report import to_json, to_markdown, to_table

    if plan["format"] == "json":
        print(to_json(audits, check=check))
    elif plan["format"] == "markdown":
        print("\n\n".join(to_markdown(a) for a in audits))
    else:
        print("\n\n".join(to_table(a) for a in audits))


def _over_budget(audits: list[Any]) -> list[str]:
    out = []
    for a in audits:
        for run in a.runs:
            if run.name == "stablenn" and (run.failed or not run.result.ok):
                out.append(run.failed or run.result.describe_worst())
    return out


def _run_all(plan: dict[str, Any]) -> int:
    import time

    from . import _engine
    from ._budgets import BUDGETED
    from ._peers import implementations
    from ._report import summary_table

    from ._peers import ALL_IMPLS

    names = list(ALL_IMPLS) if plan["all_impls"] else (plan["impls"] if plan["impls"] is not None else ["stablenn"])
    start = time.perf_counter()
    audits = []
    for function in BUDGETED:
        for dtype in plan["dtypes"]:
            chosen = [i.name for i in implementations(function, dtype, None) if i.name in names]
            if not chosen:
                continue
            audits.append(
                _engine.audit_function(
                    function,
                    dtype,
                    samples=plan["samples"],
                    seed=plan["seed"],
                    impls=chosen,
                    threshold=plan["threshold"],
                    processes=plan["processes"],
                    intervals=False,
                )
            )
            if plan["format"] == "table":
                print(f"audited {function} {dtype}", file=sys.stderr, flush=True)
    # the gradient budgets (issue 4): stablenn's rules through PyTorch, float32 and float64
    grad_impls = None if plan["all_impls"] else ["stablenn"]
    for function in _engine.grad_functions():
        for dtype in plan["dtypes"]:
            if dtype not in ("float32", "float64"):
                continue
            audits.append(
                _engine.audit_gradient(
                    function,
                    dtype,
                    samples=plan["samples"],
                    seed=plan["seed"],
                    impls=grad_impls,
                    threshold=plan["threshold"],
                    processes=plan["processes"],
                    intervals=False,
                )
            )
            if plan["format"] == "table":
                print(f"audited the gradient of {function} {dtype}", file=sys.stderr, flush=True)
    over = _over_budget(audits)
    wall = time.perf_counter() - start
    check = {"ok": not over, "over_budget": over} if plan["check"] else None
    if plan["format"] == "json":
        _emit(audits, plan, check=check)
    else:
        print(summary_table(audits, markdown=plan["format"] == "markdown"))
        print("")
        cpu = sum(a.timing.get("cpu_s", 0.0) for a in audits)
        print(f"{len(audits)} audits in {wall:.1f} s wall, {cpu:.1f} s CPU")
    if plan["check"]:
        for line in over:
            print(f"OVER BUDGET: {line}", file=sys.stderr)
        if not over:
            print("every budget met", file=sys.stderr)
        return 1 if over else 0
    return 0


def _run_exhaustive(plan: dict[str, Any]) -> int:
    from ._exhaustive import format_exhaustive, run_exhaustive

    names = plan["impls"] or ["stablenn"]
    results = run_exhaustive(
        plan["subject"],
        impls=names,
        bounds=plan["bounds"],
        processes=plan["processes"],
        chunk=plan["chunk"],
        progress=sys.stderr if sys.stderr.isatty() or plan["format"] == "table" else None,
    )
    if plan["format"] == "json":
        import json

        from ._report import SCHEMA, _clean

        print(json.dumps(_clean({"schema": SCHEMA, "exhaustive": [r.to_dict() for r in results]}), indent=2, allow_nan=False))
    else:
        print(format_exhaustive(results, markdown=plan["format"] == "markdown"))
    if plan["check"]:
        from ._budgets import budget

        over = [r for r in results if r.impl == "stablenn" and r.max_ulp > (budget(r.function, "float32") or float("inf"))]
        return 1 if over else 0
    return 0
