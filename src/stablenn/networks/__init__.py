"""Whole networks: sheet problems 1 and 2 as tools for the models people have.

- :class:`Network` and :class:`Layer`: a backend-neutral feed-forward network whose forward
  pass runs on any array library.
- :func:`sigmoid_to_tanh`, :func:`tanh_to_sigmoid`: the exact rewrite of problem 2, for
  stablenn networks, PyTorch ``nn.Sequential``, scikit-learn MLPs and ONNX graphs.
- :func:`collapse`: problem 1, a network with affine hidden layers is one affine layer.
- :func:`evaluate`, :func:`compare`, :func:`ulp_distance`: run models and measure how far
  apart their outputs are.
- :func:`nonlinearity_demo`, :func:`plot_nonlinearity_demo`: linear networks of any depth
  fail XOR; one tanh or sigmoid hidden layer solves it.

Importing this package imports no backend (torch, scikit-learn, onnx, matplotlib are
imported when a model of theirs is passed, or the demo runs).
"""

from __future__ import annotations

from ._compare import Difference, compare, evaluate, ulp_distance
from ._convert import collapse, sigmoid_to_tanh, tanh_to_sigmoid
from ._demo import nonlinearity_demo, plot_nonlinearity_demo
from ._network import ACTIVATIONS, Layer, Network

__all__ = [
    "ACTIVATIONS",
    "Difference",
    "Layer",
    "Network",
    "collapse",
    "compare",
    "evaluate",
    "nonlinearity_demo",
    "plot_nonlinearity_demo",
    "sigmoid_to_tanh",
    "tanh_to_sigmoid",
    "ulp_distance",
]
