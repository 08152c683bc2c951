"""``stablenn convert MODEL.onnx --to tanh|sigmoid -o OUT.onnx``.

A thin shell over :func:`stablenn.networks.sigmoid_to_tanh` and
:func:`~stablenn.networks.tanh_to_sigmoid` for ONNX files.  Nothing heavy is imported
until the command runs.  Pickle files (PyTorch ``.pt``, joblib, ``.pkl``) are refused:
loading one can run arbitrary code.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]

_PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".joblib", ".ckpt", ".sav", ".dill"}


def register(subparsers: Any) -> None:
    """Add the ``convert`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    parser = subparsers.add_parser(
        "convert",
        help="rewrite an ONNX network's sigmoid hidden units as tanh, or tanh as sigmoid, exactly",
        description=(
            "Rewrite the hidden units of a feed-forward ONNX network (Gemm or MatMul+Add "
            "layers) from sigmoid to tanh or back, using sigma(z) = (1 + tanh(z/2))/2; the "
            "output layer keeps its activation. Prints the largest difference between the "
            "two models' outputs on random inputs, run in onnxruntime. PyTorch and "
            "scikit-learn models are converted in Python (stablenn.networks); pickle files "
            "are refused."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="path of the .onnx file to convert")
    parser.add_argument("--to", required=True, choices=("tanh", "sigmoid"), help="activation of the new hidden units")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="path of the converted .onnx file")
    parser.add_argument("--samples", type=int, default=10_000, help="random inputs to compare on (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.set_defaults(func=run)


def _is_pickle(path: Path) -> bool:
    """Pickles by name, by the protocol-2+ opcode that starts them, or zipped (PyTorch)."""
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        return True
    with path.open("rb") as f:
        head = f.read(2)
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith(".pkl") for name in archive.namelist())
    return False


def _fail(error: Exception) -> int:
    print(f"stablenn convert: error: {error}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run ``convert``; 0 on success, 2 on bad input (one line on stderr)."""
    from .. import _messages as msg

    source = Path(args.model)
    target = Path(args.output)
    if not source.is_file():
        return _fail(msg.networks_cli_missing(str(source)))
    if _is_pickle(source):
        return _fail(msg.networks_cli_pickle(str(source)))
    if target.exists() and target.resolve() == source.resolve():
        return _fail(msg.networks_cli_same_path(str(source)))
    if not isinstance(args.samples, int) or args.samples < 1:
        return _fail(msg.networks_cli_samples(args.samples))

    import numpy as np
    import onnx
    from google.protobuf.message import DecodeError

    from ._compare import compare
    from ._convert import _rewrite, _SIGMOID_TO_TANH, _TANH_TO_SIGMOID
    from ._onnx import to_network

    try:
        model = onnx.load(str(source))
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, ValueError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return _fail(msg.networks_cli_not_onnx(str(source), reason))
    rule = _SIGMOID_TO_TANH if args.to == "tanh" else _TANH_TO_SIGMOID
    try:
        net = to_network(model)
        converted = _rewrite(model, rule)
    except (TypeError, ValueError) as error:
        return _fail(error)
    onnx.save(converted, str(target))
    hidden = [i for i, a in enumerate(net.activations[:-1]) if a == rule.source]
    x = np.random.default_rng(args.seed).standard_normal((args.samples, net.n_inputs))
    try:
        difference = compare(model, converted, x)
    except Exception as error:  # onnxruntime raises plain Exception subclasses of its own
        if not type(error).__module__.startswith("onnxruntime"):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return _fail(msg.networks_cli_onnxruntime(str(target), reason))
    if hidden:
        print(f"converted {len(hidden)} {rule.source} hidden layer{'s' if len(hidden) > 1 else ''} to {rule.target}: {target}")
    else:
        print(f"no {rule.source} hidden layer to convert; wrote an unchanged copy: {target}")
    print(f"max |difference| on {difference.n_inputs} standard normal inputs ({difference.dtype}): {difference.max_abs:.3g}")
    print(
        f"  = {difference.max_normwise:.2g} eps of the largest output in its row; "
        f"{difference.max_ulp:.0f} ULP element-wise (large only where an output is near 0)"
    )
    return 0
