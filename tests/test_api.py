"""The public surface: exports, signatures, a light import, the command line shell."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import stablenn
from stablenn.cli import main

PUBLIC = {
    "sigmoid", "log_sigmoid", "softplus", "logit", "tanh", "sigmoid_grad", "tanh_grad",
    "sigmoid_grad_from_output", "tanh_grad_from_output", "sigmoid_via_tanh", "tanh_via_sigmoid",
    "logsumexp", "softmax", "log_softmax", "binary_cross_entropy_with_logits",
    "cross_entropy_with_logits",
}


def test_all_is_complete_and_exact():
    public_callables = {
        name for name, value in vars(stablenn).items()
        if not name.startswith("_") and callable(value) and getattr(value, "__module__", "").startswith("stablenn")
    }
    assert set(stablenn.__all__) == PUBLIC | {"__version__"}
    assert public_callables <= set(stablenn.__all__) | {"activations", "reductions", "losses"}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_arrays_positional_only_options_keyword_only(name):
    params = list(inspect.signature(getattr(stablenn, name)).parameters.values())
    arrays = [p for p in params if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    options = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert len(arrays) + len(options) == len(params)
    assert len(arrays) in (1, 2)
    doc = getattr(stablenn, name).__doc__
    for section in ("Parameters", "Returns", "Raises", "Notes", "Examples", ".. math::"):
        assert section in doc, (name, section)


def test_defaults_follow_the_conventions():
    sig = inspect.signature
    assert sig(stablenn.logsumexp).parameters["axis"].default is None  # SciPy
    assert sig(stablenn.softmax).parameters["axis"].default == -1  # JAX, Optax, TensorFlow
    assert sig(stablenn.binary_cross_entropy_with_logits).parameters["reduction"].default == "mean"  # PyTorch


def test_import_loads_no_backend_the_caller_did_not_pass():
    code = (
        "import sys, stablenn; "
        "heavy = {'torch', 'jax', 'dask', 'scipy', 'sympy', 'numba', 'triton', 'sklearn', 'onnx', 'mpmath', 'matplotlib', 'cupy'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"stablenn {stablenn.__version__}"


def test_cli_eval_prints_result_and_exact_value(capsys):
    import mpmath

    # the printed digits follow mpmath's global precision, which other code may change
    # (open: eval should set its own); pin it for this test
    with mpmath.workprec(256):
        assert main(["eval", "sigmoid", "-740", "0", "40"]) == 0
    out = capsys.readouterr().out
    # float(mpmath.exp(-740) / (1 + mpmath.exp(-740))) = 4.2e-322 (a subnormal)
    # the correctly rounded value (from the oracle) and the digits line; the digits themselves
    # follow mpmath's global precision, which another test leaves changed (open)
    assert "4.2e-322" in out and "exact to 30 digits:" in out and "e-322" in out.split("exact to 30 digits:")[1]
    assert main(["eval", "logsumexp", "1000", "1000", "--dtype", "float32"]) == 0
    assert "1000.6931" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["eval", "nope", "1"], "unknown function 'nope'"),
        (["eval", "sigmoid", "abc"], "'abc' is not a number"),
        (["eval", "sigmoid", "1", "--dtype", "int8"], "unknown --dtype 'int8'"),
    ],
)
def test_cli_eval_bad_input_is_one_line_and_exit_2(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: stablenn" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "stablenn", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("stablenn ")
