"""``stablenn convert``: ONNX files converted on the command line; bad input exits 2 with one
line on stderr; pickle files are refused without being loaded."""

from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stablenn.cli import main


def write_model(path: Path, activation: str = "Sigmoid", extra: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(3, 4)), rng.normal(size=4)
    w1, b1 = rng.normal(size=(4, 2)), rng.normal(size=2)
    nodes = [
        helper.make_node("Gemm", ["x", "W0", "b0"], ["z0"], name="fc0"),
        helper.make_node(activation, ["z0"], ["a0"], name="act0"),
        helper.make_node("Gemm", ["a0", "W1", "b1"], ["y" if extra is None else "z1"], name="fc1"),
    ]
    if extra is not None:
        nodes.append(helper.make_node(extra, ["z1"], ["y"], name="unsupported"))
    inits = [numpy_helper.from_array(a, n) for a, n in ((w0, "W0"), (b0, "b0"), (w1, "W1"), (b1, "b1"))]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 2])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["convert", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_sigmoid_to_tanh_and_back(tmp_path, capsys):
    source = write_model(tmp_path / "net.onnx")
    out = tmp_path / "tanh.onnx"
    code, stdout, err = run_cli(capsys, str(source), "--to", "tanh", "-o", str(out), "--samples", "500")
    assert code == 0, err
    assert err == ""
    assert "converted 1 sigmoid hidden layer to tanh" in stdout
    assert "max |difference| on 500 standard normal inputs (float64)" in stdout
    converted = onnx.load(str(out))
    onnx.checker.check_model(converted, full_check=True)
    assert [n.op_type for n in converted.graph.node] == ["Gemm", "Tanh", "Gemm"]
    # the printed difference is a measurement: a few float64 roundings of outputs of size ~1
    normwise = float(stdout.split("  = ")[1].split(" eps")[0])
    ulp = float(stdout.split("; ")[1].split(" ULP")[0])
    assert 0 <= normwise <= 16 and 0 <= ulp
    back = tmp_path / "back.onnx"
    code, stdout, _ = run_cli(capsys, str(out), "--to", "sigmoid", "-o", str(back))
    assert code == 0 and "converted 1 tanh hidden layer to sigmoid" in stdout
    code, stdout, _ = run_cli(capsys, str(back), "--to", "sigmoid", "-o", str(tmp_path / "same.onnx"))
    assert code == 0 and "no tanh hidden layer to convert" in stdout


def _assert_refused(code: int, out: str, err: str, pattern: str) -> None:
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("stablenn convert: error: ")
    assert "Traceback" not in err
    assert pattern in err, err


class _Payload:
    """Loading this pickle would create a file: it must never be loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("name", ["model.pkl", "model.pt", "model.joblib", "disguised.onnx"])
def test_pickle_files_are_refused_without_loading(tmp_path, capsys, name):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=4))
    code, out, err = run_cli(capsys, str(path), "--to", "tanh", "-o", str(tmp_path / "out.onnx"))
    _assert_refused(code, out, err, "is a pickle file")
    assert "can run arbitrary code" in err and "stablenn.networks.sigmoid_to_tanh(model)" in err and "ONNX" in err
    assert not marker.exists()


def test_torch_save_files_are_refused(tmp_path, capsys):
    import torch

    path = tmp_path / "weights.bin"  # a zip archive with a pickle inside, whatever its name
    torch.save(torch.nn.Linear(2, 2).state_dict(), str(path))
    assert zipfile.is_zipfile(path)
    code, out, err = run_cli(capsys, str(path), "--to", "tanh", "-o", str(tmp_path / "out.onnx"))
    _assert_refused(code, out, err, "is a pickle file")


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    good = write_model(tmp_path / "net.onnx")
    cases = [
        ((str(tmp_path / "missing.onnx"), "--to", "tanh", "-o", str(tmp_path / "o.onnx")), "does not exist"),
        ((str(good), "--to", "tanh", "-o", str(good)), "must differ from `MODEL`"),
        ((str(good), "--to", "tanh", "-o", str(tmp_path / "o.onnx"), "--samples", "0"), "`--samples` must be a positive integer"),
    ]
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\xfe not a protobuf at all \x00\x01")
    cases.append(((str(garbage), "--to", "tanh", "-o", str(tmp_path / "o.onnx")), "is not a valid ONNX model"))
    unsupported = write_model(tmp_path / "conv.onnx", extra="Softsign")
    cases.append(((str(unsupported), "--to", "tanh", "-o", str(tmp_path / "o.onnx")), "ONNX node 3 'unsupported' (Softsign) is not supported"))
    for argv, pattern in cases:
        code, out, err = run_cli(capsys, *argv)
        _assert_refused(code, out, err, pattern)
    assert not (tmp_path / "o.onnx").exists()


def test_argparse_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", str(tmp_path / "x.onnx"), "--to", "relu", "-o", "y.onnx"])
    assert info.value.code == 2
    assert "invalid choice: 'relu'" in capsys.readouterr().err


def test_the_cli_module_imports_nothing_heavy():
    heavy = ("torch", "sklearn", "onnx", "onnxruntime", "matplotlib", "scipy", "jax", "sympy")
    code = (
        "import sys, stablenn.networks, stablenn.networks._cli; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_onnxruntime_failures_exit_2(tmp_path, capsys, monkeypatch):
    import onnxruntime
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    def refuse(*args, **kwargs):
        raise Fail("[ONNXRuntimeError] : 1 : FAIL : opset 99 is not supported")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    source = write_model(tmp_path / "net.onnx")
    out = tmp_path / "tanh.onnx"
    code, stdout, err = run_cli(capsys, str(source), "--to", "tanh", "-o", str(out))
    _assert_refused(code, stdout, err, "onnxruntime cannot run the models")
    assert "opset 99 is not supported" in err and out.exists()
