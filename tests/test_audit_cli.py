"""``stablenn audit`` from the command line: refusals, formulas, plots, --grad, --exhaustive.

Truth comes from mpmath: the exhaustive mode's float64 reference is checked against the
mpmath oracle on every input of a range; the oracle itself is tested in
``tests/test_audit_machinery.py``.
"""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest

from stablenn import _messages
from stablenn.audit import _exhaustive, _oracle
from stablenn.audit._plot import escape_text
from stablenn.audit._report import escape_markdown
from stablenn.audit._ulp import ulp_distance
from stablenn.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["audit", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- bad input: one report, exit 2


REFUSALS = [
    (["sigmod"], "Did you mean sigmoid"),
    (["log(1 + exp(x)"], "expected ',' or ')'"),
    (["import os"], "not accepted"),
    (["__import__('os')"], "not accepted"),
    (["softplus", "--range", "1:1"], "the range is empty"),
    (["softplus", "--range", "1:inf"], "must be finite"),
    (["softplus", "--range", "a:b"], "must be numbers"),
    (["softplus", "--range", "1e300:1e301", "--dtype", "float32"], "no float32 value lies inside it"),
    (["logsumexp", "--range", "0:1"], "takes vectors or batches"),
    (["x*y", "--range", "z=0:1"], "names no scalar variable"),
    (["1 + 2"], "has no variable"),
    (["softplus", "--dtype", "float128"], "`--dtype` must be one of"),
    (["softplus", "--dtype", "bfloat16", "--impl", "numpy"], "not available to the numpy implementation"),
    (["softplus", "--impl", "tensorflow"], "TensorFlow is not installed"),
    (["softplus", "--impl", "scipy"], "SciPy has no softplus"),
    (["softplus", "--impl", "octave"], "`--impl` must name implementations"),
    (["softplus", "--samples", "0"], "`--samples` must be a positive integer"),
    (["softplus", "--samples", "many"], "`--samples` must be a positive integer"),
    (["softplus", "--format", "html"], "`--format` must be one of"),
    (["softplus", "--plot", "out.pdf"], "must name a .png or .svg file"),
    (["softplus", "--threshold", "-1"], "`--threshold` must be"),
    (["softplus", "--exhaustive", "--dtype", "float64"], "covers the 2**32 float32 inputs only"),
    (["logsumexp", "--exhaustive"], "every float32 input of a function of one scalar input"),
    (["sigmoid_grad_from_output", "--grad"], "`--grad` audits the gradient of one of"),
    (["softplus", "--all"], "takes no FUNCTION"),
    (["--all", "--plot", "a.png"], "cannot be combined"),
    ([], "needs a FUNCTION"),
    (["log(x)", "--impl", "naive"], "cannot be combined"),
]


@pytest.mark.parametrize(("argv", "fragment"), REFUSALS, ids=[" ".join(a) or "nothing" for a, _ in REFUSALS])
def test_bad_input_is_one_report_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> None:
    rc, out, err = _run(capsys, *argv)
    assert rc == 2
    assert out == ""
    assert "Traceback" not in err
    assert fragment in err
    assert err.startswith("stablenn audit: error: ")
    # one line, except the parser's report: summary, formula, caret, what is accepted
    assert len(err.rstrip("\n").splitlines()) in ((4,) if "not accepted" in fragment or "expected ','" in fragment else (1,))


def test_parser_report_points_at_the_character(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(capsys, "log(1 + exp(x)) $ 2")
    lines = err.rstrip("\n").splitlines()
    assert rc == 2 and len(lines) == 4
    assert lines[1].strip() == "log(1 + exp(x)) $ 2"
    assert lines[2].index("^") == lines[1].index("$")


def test_every_audit_command_message_is_raised_by_a_test() -> None:
    import inspect
    import re

    section = inspect.getsource(_messages).split("# ---------------------------------------------------------------- audit command")[1]
    section = section.split("# ----------------------------------------------------------------")[0]
    names = re.findall(r"^def (audit_\w+)", section, re.M)
    tested = {
        "audit_unknown_impl", "audit_impl_unavailable", "audit_impl_lacks_dtype", "audit_unknown_subject",
        "audit_cli_dtype", "audit_bad_range", "audit_range_variable", "audit_range_not_scalar",
        "audit_formula_constant", "audit_bad_threshold", "audit_plot_suffix", "audit_exhaustive_subject",
        "audit_exhaustive_dtype", "audit_grad_function", "audit_option_conflict", "audit_all_with_subject",
        "audit_missing_subject", "audit_bad_processes", "audit_plot_write",
    }
    assert set(names) == tested
    # the two not reached by REFUSALS above
    assert "--processes" in str(_messages.audit_bad_processes("x"))
    assert "could not write" in str(_messages.audit_plot_write("/x/y.png", "No such file or directory"))


def test_processes_and_plot_folder_refusals(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    rc, _, err = _run(capsys, "softplus", "--processes", "0")
    assert rc == 2 and "`--processes` must be a positive integer" in err
    rc, _, err = _run(capsys, "softplus", "--samples", "50", "--impl", "stablenn", "--processes", "1", "--plot", "/nonexistent/dir/p.png")
    assert rc == 2 and "could not write" in err and "Traceback" not in err


# ---------------------------------------------------------------- formulas


def test_domain_errors_are_counted_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    # exp(x)/exp(x) is 1 exactly; in float64 exp overflows above 709.78 and inf/inf is NaN
    # (NumPy's invalid-operation error, here an ordinary NaN of the audit).  Warnings are
    # errors in this test run, so a leaked RuntimeWarning would fail it.
    rc, out, _ = _run(capsys, "exp(x)/exp(x)", "--range", "700:720", "--samples", "200", "--processes", "1", "--format", "json")
    assert rc == 0
    res = json.loads(out)["audits"][0]["results"][0]
    assert res["implementation"] == "formula"
    assert res["nan_where_finite"] > 0
    # log(x) on [-1, 1]: NaN where undefined in both the program and the exact value
    rc, out, _ = _run(capsys, "log(x)", "--range", "-1:1", "--samples", "200", "--processes", "1", "--format", "json")
    res = json.loads(out)["audits"][0]["results"][0]
    assert rc == 0 and res["nan_where_finite"] == 0 and res["max_ulp"] <= 1


def test_formula_with_two_variables_and_a_rewrite(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "x*y - log(1 + exp(x))", "--range", "y=0:1", "--samples", "300", "--processes", "1")
    assert rc == 0
    assert "stablenn.softplus(x)" in out
    assert "rewrite" in out and "x*y - softplus(x)" in out
    assert "y in [0.0, 1.0]" in out


def test_vector_formula(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "exp(v)/sum(exp(v))", "--samples", "60", "--processes", "1", "--format", "json")
    doc = json.loads(out)["audits"][0]
    assert rc == 0 and doc["vector_variables"] == ["v"]
    formula, rewrite = doc["results"]
    assert rewrite["label"] == "softmax(v)"
    assert formula["nan_where_finite"] > 0  # inf/inf and 0/0 in the naive softmax
    assert rewrite["nan_where_finite"] == 0


# ---------------------------------------------------------------- escaping


def test_user_text_is_escaped() -> None:
    assert escape_markdown("x*y_1 | a") == "x\\*y\\_1 \\| a"
    assert escape_markdown("<script>") == "&lt;script&gt;"
    assert escape_text("price $x$") == "price \\$x\\$"


def test_markdown_output_escapes_the_formula(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "x*y_1", "--samples", "50", "--processes", "1", "--format", "markdown")
    assert rc == 0
    assert "x\\*y\\_1" in out and "x*y_1" not in out


def test_plots(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    import pathlib

    folder = pathlib.Path(str(tmp_path))
    svg, png = folder / "a.svg", folder / "b.png"
    rc, _, err = _run(capsys, "log(1 + exp(x))", "--dtype", "float32", "--samples", "300", "--processes", "1", "--plot", str(svg))
    assert rc == 0 and "plot written" in err
    text = svg.read_text()
    assert text.startswith("<?xml") and "log(1 + exp(x)) in float32" in text
    rc, _, _ = _run(capsys, "softmax", "--samples", "30", "--processes", "1", "--impl", "stablenn,naive", "--plot", str(png))
    assert rc == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- --grad


def test_grad_audit(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "sigmoid", "--grad", "--dtype", "float32", "--samples", "400", "--processes", "1", "--format", "json")
    assert rc == 0
    results = {r["implementation"]: r for r in json.loads(out)["audits"][0]["results"]}
    assert results["stablenn"]["max_ulp"] <= 1
    # the derivative from the output, s (1 - s), is exactly 0 once s rounds to 1 although
    # sigma'(x) ~ e**-x is a normal float32 far beyond: every digit lost
    naive = results["naive"]
    assert any(iv["level"] == "lost" and iv["lo"] > 16 for iv in naive["intervals"])
    assert "torch" in results and "jax" in results


# ---------------------------------------------------------------- --check


def test_check_exit_codes(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from stablenn.audit import _budgets

    argv = ["sigmoid", "--dtype", "float64", "--impl", "stablenn", "--samples", "400", "--processes", "1", "--check"]
    rc, _, _ = _run(capsys, *argv)
    assert rc == 0
    # a budget no float64 sigmoid can meet on these inputs (some results are 1 ULP off
    # the correctly rounded value): the check must fail
    monkeypatch.setitem(_budgets.BUDGETS, ("sigmoid", "float64"), 0.0)
    rc, _, err = _run(capsys, *argv)
    assert rc == 1 and "OVER BUDGET: sigmoid float64" in err


def test_all_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    from stablenn.audit._budgets import BUDGETED

    rc, out, _ = _run(capsys, "--all", "--check", "--dtype", "float16", "--samples", "12", "--processes", "1", "--format", "json")
    doc = json.loads(out)
    assert [a["subject"] for a in doc["audits"]] == list(BUDGETED)
    assert all(a["dtype"] == "float16" for a in doc["audits"])
    over = [r for a in doc["audits"] for r in a["results"] if r["within_budget"] is False]
    assert doc["check"]["ok"] == (not over)
    assert rc == (0 if not over else 1)


# ---------------------------------------------------------------- --exhaustive


def test_exhaustive_range_agrees_with_the_oracle(capsys: pytest.CaptureFixture[str]) -> None:
    lo, hi = 16.0, 16.015625  # 2049 float32 values where 1 + e**-x is near 1 in float32
    rc, out, _ = _run(capsys, "sigmoid", "--exhaustive", "--range", f"{lo}:{hi}", "--impl", "stablenn,naive",
                      "--processes", "1", "--chunk", "500", "--format", "json")
    assert rc == 0
    got = {r["impl"]: r for r in json.loads(out)["exhaustive"]}
    x = np.arange(np.float32(lo).view(np.uint32), np.float32(hi).view(np.uint32) + 1, dtype=np.uint32).view(np.float32)
    exact = _oracle.elementwise("sigmoid", x, "float32")
    naive = (1 / (1 + np.exp(-x))).astype(np.float32)
    u = ulp_distance(naive, exact, "float32")
    assert got["naive"]["inputs"] == x.size
    assert got["naive"]["max_ulp"] == float(u.max())
    assert got["naive"]["not_correctly_rounded"] == int((u > 0).sum())
    assert got["stablenn"]["max_ulp"] <= 1


def test_exhaustive_over_worker_processes() -> None:
    # the float32 values of [1, 1.001]: 8390 of them (bit patterns 0x3F800000 to 0x3F8020C5),
    # in 5 chunks over 2 spawned workers
    res = _exhaustive.run_exhaustive("tanh", impls=("stablenn", "naive"), bounds=(1.0, 1.0010000467300415), processes=2, chunk=2000)
    n = int(np.float32(1.0010000467300415).view(np.int32)) - int(np.float32(1.0).view(np.int32)) + 1
    assert [r.inputs for r in res] == [n, n] and n == 8390
    assert res[0].max_ulp <= 1 and res[0].bound_violations == 0
    assert res[1].impl == "naive" and res[1].label == "(exp(x) - exp(-x))/(exp(x) + exp(-x))"


def test_exhaustive_decision_is_right_at_midpoints() -> None:
    # 1 + 2**-24 is the midpoint between float32 1 and its successor: undecidable
    # without more digits; a hair beside it (well beyond the 2**-44 bound) is decided.
    r, d = _exhaustive.decide(np.array([1 + 2.0**-24, 1 + 2.0**-24 + 2.0**-40, 2.0**128 - 2.0**103, 3.0e38]))
    assert d.tolist() == [True, False, True, False]
    assert r[1] == np.float32(1 + 2.0**-23)


@pytest.mark.parametrize("function", _exhaustive.EXHAUSTIVE_FUNCTIONS)
def test_exhaustive_reference_within_its_bound(function: str) -> None:
    # The float64 reference against mpmath at 113 bits on sampled float32 inputs: the
    # relative error bound 2**-44 of the docs (plus 2**-1000 absolute) must hold.
    from stablenn.audit._sampler import sample_unary

    kind = {"logit": "probability", "sigmoid_grad_from_output": "probability", "tanh_grad_from_output": "unit"}.get(function, "real")
    x = sample_unary("float32", 400, seed=7, kind=kind)
    x = x[np.isfinite(x)]
    ref = _exhaustive.reference64(function, x)
    worst = 0.0
    for xi, ri in zip(x.tolist(), ref.tolist(), strict=True):
        f = _oracle.exact_elementwise(function, xi, prec=113)
        if not mpmath.isfinite(f) or math.isnan(ri):
            assert not mpmath.isfinite(f) or f != f or math.isnan(ri) == bool(mpmath.isnan(f))
            continue
        err = abs(mpmath.mpf(ri) - f)
        assert err <= _exhaustive.REL_BOUND * abs(f) + _exhaustive.ABS_BOUND, (xi, ri, f)
        if abs(f) >= 2.0**-1022:  # relative error where float64 is normal (else the absolute bound)
            worst = max(worst, float(err / abs(f)))
    assert worst < 2.0**-50  # in practice far inside the bound


# ---------------------------------------------------------------- regression: the oracle


def test_oracle_softmax_when_every_gap_overflows_float64() -> None:
    # [1.7e308, -1.7e308]: the gap 3.4e308 overflows float64; the oracle once counted the
    # largest term twice (softmax 0.5).  Exact: softmax = [1/(1 + e**-3.4e308), ...] -> [1, 0];
    # mpmath: mpmath.mpf(1.7e308) + mpmath.log1p(mpmath.exp(-3.4e308)) rounds to 1.7e308.
    r = _oracle.vector(np.array([1.7e308, -1.7e308]), "float64")
    assert r.logsumexp == 1.7e308
    assert r.softmax.tolist() == [1.0, 0.0]
    assert r.log_softmax.tolist() == [0.0, -math.inf]


def test_bfloat16_naive_formula_runs_on_its_float32_storage(capsys: pytest.CaptureFixture[str]) -> None:
    # regression: NumPy has no bfloat16, and converting the naive formula's input to it
    # raised a TypeError with a traceback; the naive formula rounds every operation to
    # bfloat16 itself.
    rc, out, _ = _run(capsys, "tanh", "--dtype", "bfloat16", "--impl", "stablenn,naive", "--samples", "200",
                      "--processes", "1", "--format", "json")
    results = {r["implementation"]: r for r in json.loads(out)["audits"][0]["results"]}
    assert rc == 0 and results["naive"]["failed"] is None and results["naive"]["count"] == 200
    assert results["stablenn"]["max_ulp"] == 0
