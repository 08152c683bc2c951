"""The JSON output of ``stablenn audit``: the documented schema, exactly, with exact values.

The schema tables of ``docs/audit.md`` are parsed and compared with what the command
writes, so the documentation cannot drift from the output.  Values are checked against
mpmath (worst inputs' exact values) and against themselves (hexadecimal interval ends).
"""

from __future__ import annotations

import json
import math
import pathlib
import re

import mpmath
import pytest

from stablenn.cli import main

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "audit.md"


def _schema() -> dict[str, list[str]]:
    """Keys of each object, from the tables under '### ... object' in docs/audit.md."""
    text = DOC.read_text()
    out: dict[str, list[str]] = {}
    for m in re.finditer(r"^### The (\w+) object\n(.*?)(?=^### |^## |\Z)", text, re.M | re.S):
        out[m.group(1)] = re.findall(r"^\| `(\w+)` \|", m.group(2), re.M)
    return out


def _strict(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _audit(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    rc = main(["audit", *argv, "--format", "json", "--processes", "1"])
    out, _ = capsys.readouterr()
    assert rc == 0
    return _strict(out)


def test_schema_is_documented_for_every_object() -> None:
    schema = _schema()
    assert set(schema) == {"document", "audit", "result", "interval", "rewrite", "skipped", "check", "exhaustive"}
    assert schema["result"][:11] == [
        "function", "dtype", "implementation", "label", "backend", "count",
        "max_ulp", "p999_ulp", "frac_above_1ulp", "max_bits", "nan_where_finite",
    ]


def test_function_audit_matches_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema()
    doc = _audit(capsys, "sigmoid", "--dtype", "float32", "--samples", "600", "--impl", "stablenn,naive")
    assert list(doc) == schema["document"][:3]  # no "check" without --check
    assert doc["schema"] == "stablenn-audit/1"
    (audit,) = doc["audits"]
    assert list(audit) == schema["audit"]
    assert (audit["subject"], audit["kind"], audit["dtype"], audit["samples"]) == ("sigmoid", "function", "float32", 600)
    for res in audit["results"]:
        assert list(res) == [k for k in schema["result"] if k != "max_ulp_raw"]
        for iv in res["intervals"]:
            assert list(iv) == schema["interval"]
            # the decimal and the hexadecimal ends name the same float
            assert float.fromhex(iv["lo_hex"]) == iv["lo"] and float.fromhex(iv["hi_hex"]) == iv["hi"]
    for sk in audit["skipped"]:
        assert list(sk) == schema["skipped"]
    stablenn, naive = audit["results"]
    assert stablenn["within_budget"] is True and stablenn["budget"] == 1.0
    # naive sigmoid underflows to 0 below x = -88.72 (exp(-x) = inf): all digits lost there
    assert any(iv["level"] == "lost" and iv["cause"] == "overflow" and iv["where"] == "exp(-x)" for iv in naive["intervals"])
    # the worst input's exact value, from mpmath: sigmoid(x) = 1/(1 + e**-x) rounded to 24 bits
    x = naive["worst_input"]["x"]
    with mpmath.workprec(400):
        exact = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
    with mpmath.workprec(24):
        rounded = float(+exact) if exact > mpmath.mpf(2) ** -126 else None
    if rounded is not None:
        assert naive["worst_exact"] == rounded


def test_non_finite_numbers_are_strings(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _audit(capsys, "log(1 + exp(x))", "--dtype", "float32", "--samples", "400")
    formula = doc["audits"][0]["results"][0]
    # got inf at x >= 88.72...: max_ulp stays a finite ULP count (inf is the neighbour of
    # the largest float), while the worst got value is the string "inf"
    assert formula["worst_got"] == "inf"
    assert isinstance(formula["max_ulp"], float) and math.isfinite(formula["max_ulp"])


def test_formula_audit_lists_rewrites(capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema()
    doc = _audit(capsys, "x - log(sum(exp(v)))", "--samples", "40")
    audit = doc["audits"][0]
    assert audit["kind"] == "formula" and audit["variables"] == ["x", "v"] and audit["vector_variables"] == ["v"]
    (rw,) = audit["rewrites"]
    assert list(rw) == schema["rewrite"]
    assert (rw["rule"], rw["before"], rw["call"]) == ("logsumexp", "log(sum(exp(v)))", "stablenn.logsumexp(v, axis=-1)")
    assert [r["implementation"] for r in audit["results"]] == ["formula", "rewrite"]
    assert audit["results"][1]["label"] == "x - logsumexp(v)"


def test_ranges_and_budget_check_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema()
    doc = _audit(capsys, "sqrt(x**2)", "--range", "-1e300:1e300", "--samples", "300")
    assert doc["audits"][0]["ranges"] == {"x": [-1e300, 1e300]}
    rc = main(["audit", "tanh", "--dtype", "float32", "--samples", "300", "--impl", "stablenn", "--check",
               "--format", "json", "--processes", "1"])
    out, _ = capsys.readouterr()
    single = _strict(out)
    assert rc == 0 and "check" not in single  # a single audit reports its check in the exit code
    rc = main(["audit", "--all", "--check", "--dtype", "bfloat16", "--samples", "10", "--format", "json", "--processes", "1"])
    out, _ = capsys.readouterr()
    doc = _strict(out)
    assert list(doc) == schema["document"]
    assert list(doc["check"]) == schema["check"]
    assert rc == (0 if doc["check"]["ok"] else 1)


def test_exhaustive_json(capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema()
    rc = main(["audit", "logit", "--exhaustive", "--range", "0.5:0.5009765625", "--format", "json", "--processes", "1"])
    out, _ = capsys.readouterr()
    doc = _strict(out)
    assert rc == 0 and doc["schema"] == "stablenn-audit/1"
    (res,) = doc["exhaustive"]
    assert list(res) == schema["exhaustive"]
    # [0.5, 0.5 + 2**-10] holds 2**14 + 1 float32 values (spacing 2**-24 in [0.5, 1))
    assert res["inputs"] == 2**14 + 1 and res["complete"] is False
