"""Read and write ONNX feed-forward graphs (onnx is imported only when given a model).

Accepted graphs are one chain from the single data input to the single output:

- ``Gemm(x, B, C)`` with ``transA = 0`` (any ``transB``, ``alpha``, ``beta``), or
  ``MatMul(x, W)`` optionally followed by ``Add(., b)``, where ``B``, ``C``, ``W``, ``b``
  are initializers used by no other node;
- ``Sigmoid``, ``Tanh``, ``Relu`` after a layer, ``Identity`` anywhere, and ``Softmax`` over
  the last axis as the final node.

A rewrite changes initializer values and activation node types in a copy and leaves every
name, shape and piece of metadata as it was.  Where the rewrite needs a bias the layer did
not have, it adds one (the Gemm's ``C`` input, or an ``Add`` after the MatMul).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _messages as msg
from ._network import Layer, Network

__all__: list[str] = []

_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softmax": "softmax"}
_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh"}


def is_model(obj: Any) -> bool:
    onnx = sys.modules.get("onnx")
    return onnx is not None and isinstance(obj, onnx.ModelProto)


@dataclass
class _Site:
    """Where one layer's parameters live in the graph."""

    kind: str  # "gemm" or "matmul"
    node: int  # index of the Gemm or MatMul node
    weight: str  # initializer holding B or W
    trans_b: bool
    scaled: bool  # Gemm alpha or beta differs from 1
    bias: str | None  # initializer holding C or the Add's operand
    add: int | None  # index of the Add node after a MatMul
    activation: int | None = None  # index of the activation node


def _node_label(graph: Any, i: int) -> tuple[int, str, str]:
    node = graph.node[i]
    return i, node.name or node.output[0], node.op_type


def _node_error(graph: Any, i: int, reason: str) -> ValueError:
    return msg.networks_onnx_node(*_node_label(graph, i), reason)


def _array(init: Any) -> np.ndarray:
    from onnx import TensorProto, numpy_helper

    if init.data_type not in (TensorProto.FLOAT16, TensorProto.FLOAT, TensorProto.DOUBLE):
        raise msg.networks_onnx_dtype(init.name, TensorProto.DataType.Name(init.data_type))
    return numpy_helper.to_array(init)


def _bias_vector(graph: Any, i: int, value: np.ndarray, n_out: int) -> np.ndarray:
    """A bias operand broadcast to shape (n_out,), refused if it varies along the batch."""
    if value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1) or value.size not in (1, n_out):
        raise _node_error(graph, i, f"has a bias of shape {value.shape}; expected ({n_out},) or (1, {n_out})")
    return np.broadcast_to(value.reshape(-1), (n_out,)).astype(np.float64)


def _parse(model: Any) -> tuple[Network, list[_Site]]:
    from onnx import helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    data_inputs = [v for v in graph.input if v.name not in inits]
    if len(data_inputs) != 1:
        raise msg.networks_onnx_structure(f"it has {len(data_inputs)} data inputs")
    if len(graph.output) != 1:
        raise msg.networks_onnx_structure(f"it has {len(graph.output)} outputs")
    output = graph.output[0].name
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(i)
    for name, users in consumers.items():
        if name in inits and len(users) > 1:
            raise _node_error(graph, users[1], f"shares initializer '{name}' with node {users[0]}")

    def initializer(i: int, name: str, what: str) -> np.ndarray:
        if name not in inits:
            raise _node_error(graph, i, f"takes its {what} '{name}' from another node, not from an initializer")
        return _array(inits[name])

    def one_output(i: int) -> str:
        node = graph.node[i]
        if len(node.output) != 1:
            raise _node_error(graph, i, f"has {len(node.output)} outputs")
        return node.output[0]

    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    activations: list[str] = []
    names: list[str] = []
    sites: list[_Site] = []
    visited: set[int] = set()
    current = data_inputs[0].name
    input_rank = len(data_inputs[0].type.tensor_type.shape.dim)
    while True:
        users = consumers.get(current, [])
        if not users and current == output:
            break
        if len(users) != 1:
            where = "the graph output" if current == output else f"tensor '{current}'"
            raise msg.networks_onnx_structure(f"{where} is used by {len(users)} nodes")
        i = users[0]
        node = graph.node[i]
        visited.add(i)
        if node.domain not in ("", "ai.onnx"):
            raise _node_error(graph, i, f"is from operator domain '{node.domain}', which is not supported")
        op = node.op_type
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        out = one_output(i)
        if op in ("Gemm", "MatMul"):
            if len(node.input) < 2 or node.input[0] != current:
                raise _node_error(graph, i, "multiplies the data as its second operand; expected x @ W")
            if attrs.get("transA", 0) != 0:
                raise _node_error(graph, i, "has transA=1")
            raw = initializer(i, node.input[1], "weight")
            if raw.ndim != 2:
                raise _node_error(graph, i, f"has a weight of shape {raw.shape}; expected a matrix")
            trans_b = bool(attrs.get("transB", 0)) if op == "Gemm" else False
            alpha = float(attrs.get("alpha", 1.0))
            beta = float(attrs.get("beta", 1.0))
            weight = raw.astype(np.float64)
            weight = weight.T if trans_b else weight
            bias_name = None
            add = None
            if op == "Gemm":
                weight = alpha * weight
                if len(node.input) > 2 and node.input[2]:
                    bias_name = node.input[2]
                    bias = beta * _bias_vector(graph, i, initializer(i, bias_name, "bias C"), weight.shape[1])
                else:
                    bias = np.zeros(weight.shape[1])
            else:
                bias = np.zeros(weight.shape[1])
                after = consumers.get(out, [])
                if len(after) == 1 and graph.node[after[0]].op_type == "Add" and out != output:
                    add = after[0]
                    add_node = graph.node[add]
                    others = [name for name in add_node.input if name != out]
                    if len(others) != 1:
                        raise _node_error(graph, add, "adds the product to itself")
                    bias_name = others[0]
                    bias = _bias_vector(graph, add, initializer(add, bias_name, "bias"), weight.shape[1])
                    visited.add(add)
                    out = one_output(add)
            sites.append(_Site(op.lower(), i, node.input[1], trans_b, alpha != 1.0 or beta != 1.0, bias_name, add))
            weights.append(weight)
            biases.append(bias)
            activations.append("identity")
            names.append(f"node {i} '{node.name or out}' ({op})")
        elif op in _ACTIVATIONS:
            if not sites:
                raise _node_error(graph, i, "comes before any Gemm or MatMul")
            if sites[-1].activation is not None:
                raise _node_error(graph, i, "follows another activation")
            if op == "Softmax":
                axis = attrs.get("axis", -1 if _opset(model) >= 13 else 1)
                if not (axis == -1 or (axis == input_rank - 1 and input_rank > 0)):
                    raise _node_error(graph, i, f"normalises over axis {axis}; expected the last axis")
                if out != output:
                    raise _node_error(graph, i, "is not the last node; softmax is accepted on the output only")
            sites[-1].activation = i
            activations[-1] = _ACTIVATIONS[op]
        elif op == "Identity":
            pass
        else:
            raise _node_error(graph, i, "is not supported")
        current = out
    for i in range(len(graph.node)):
        if i not in visited:
            raise _node_error(graph, i, "is not on the chain from the graph input to its output")
    if not sites:
        raise msg.networks_onnx_structure("it has no Gemm or MatMul node")
    layers = [Layer(w, b, a, name=n) for w, b, a, n in zip(weights, biases, activations, names)]
    return Network(layers), sites


def _opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def to_network(model: Any) -> Network:
    """The graph as a float64 Network."""
    return _parse(model)[0]


class _Names:
    """Fresh tensor names that clash with none in the graph."""

    def __init__(self, graph: Any) -> None:
        self.used = {t.name for t in graph.initializer} | {v.name for v in graph.input}
        self.used |= {v.name for v in graph.output}
        for node in graph.node:
            self.used |= set(node.input) | set(node.output) | {node.name}

    def __call__(self, base: str) -> str:
        name, k = base, 0
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


def _store(graph: Any, name: str, values: np.ndarray, where: str, what: str) -> None:
    """Overwrite initializer ``name`` with ``values`` in its own dtype and shape."""
    from onnx import numpy_helper

    init = next(t for t in graph.initializer if t.name == name)
    old = numpy_helper.to_array(init)
    with np.errstate(over="ignore"):
        cast = values.astype(old.dtype)
    if not np.isfinite(cast).all():
        raise msg.networks_rewrite_overflow(where, what)
    shape = old.shape if old.size == cast.size else cast.shape
    init.CopyFrom(numpy_helper.from_array(cast.reshape(shape), name))
    if shape != old.shape:
        # a broadcast bias became a full vector: keep a graph input that declares it in step
        for value in graph.input:
            if value.name == name:
                from onnx import helper

                value.CopyFrom(helper.make_tensor_value_info(name, init.data_type, list(shape)))


def _add_initializer(graph: Any, name: str, values: np.ndarray, like: str, where: str) -> None:
    from onnx import numpy_helper

    dtype = numpy_helper.to_array(next(t for t in graph.initializer if t.name == like)).dtype
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    if not np.isfinite(cast).all():
        raise msg.networks_rewrite_overflow(where, "bias")
    graph.initializer.append(numpy_helper.from_array(cast, name))


def _check(model: Any) -> Any:
    import onnx

    onnx.checker.check_model(model, full_check=True)
    return model


def rewritten(model: Any, new: Network, converted: tuple[int, ...]) -> Any:
    """A copy of ``model`` with ``new``'s parameters and activation node types."""
    import onnx
    from onnx import helper

    _, sites = _parse(model)
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    graph = copied.graph
    names = _Names(graph)
    inserts: list[tuple[int, Any]] = []
    changed = {k for k in converted} | {k + 1 for k in converted}
    for k, (site, layer) in enumerate(zip(sites, new.layers)):
        if k not in changed:
            continue
        node = graph.node[site.node]
        where = layer.name
        _store(graph, site.weight, layer.weight.T if site.trans_b else layer.weight, where, "weight")
        if site.scaled:
            # the parameters now hold alpha*B and beta*C themselves
            kept = [a for a in node.attribute if a.name not in ("alpha", "beta")]
            del node.attribute[:]
            node.attribute.extend(kept)
        if site.bias is not None:
            _store(graph, site.bias, layer.bias, where, "bias")
        elif np.any(layer.bias != 0):
            bias_name = names(f"{node.name or node.output[0]}_bias")
            _add_initializer(graph, bias_name, layer.bias, site.weight, where)
            if site.kind == "gemm":
                if len(node.input) > 2:
                    node.input[2] = bias_name
                else:
                    node.input.append(bias_name)
            else:
                product = names(f"{node.output[0]}_product")
                add = helper.make_node(
                    "Add", [product, bias_name], [node.output[0]], name=names(f"{node.name or 'MatMul'}_bias_add")
                )
                node.output[0] = product
                inserts.append((site.node + 1, add))
        if k in converted and site.activation is not None:
            graph.node[site.activation].op_type = _OPS[layer.activation]
    for index, add in sorted(inserts, key=lambda item: item[0], reverse=True):
        graph.node.insert(index, add)
    return _check(copied)


def collapsed(model: Any, new: Network) -> Any:
    """A model with one Gemm (or MatMul+Add) and the output activation, same input and output."""
    import onnx
    from onnx import helper, numpy_helper

    _, sites = _parse(model)
    graph = model.graph
    layer = new.layers[0]
    first = sites[0]
    dtype = numpy_helper.to_array(next(t for t in graph.initializer if t.name == first.weight)).dtype
    inits = {t.name for t in graph.initializer}
    data_input = next(v for v in graph.input if v.name not in inits)
    output = graph.output[0].name
    names = _Names(graph)
    weight_name, bias_name = names("collapsed_weight"), names("collapsed_bias")
    initializers = []
    for name, values, what in ((weight_name, layer.weight, "weight"), (bias_name, layer.bias, "bias")):
        with np.errstate(over="ignore"):
            cast = values.astype(dtype)
        if not np.isfinite(cast).all():
            raise msg.networks_rewrite_overflow(layer.name or "the collapsed layer", what)
        initializers.append(numpy_helper.from_array(cast, name))
    last = sites[-1].activation
    affine_out = output if last is None else names("collapsed_affine")
    if first.kind == "gemm":
        nodes = [helper.make_node("Gemm", [data_input.name, weight_name, bias_name], [affine_out], name="collapsed_gemm")]
    else:
        product = names("collapsed_product")
        nodes = [
            helper.make_node("MatMul", [data_input.name, weight_name], [product], name="collapsed_matmul"),
            helper.make_node("Add", [product, bias_name], [affine_out], name="collapsed_add"),
        ]
    if last is not None:
        act = onnx.NodeProto()
        act.CopyFrom(graph.node[last])
        del act.input[:]
        act.input.append(affine_out)
        del act.output[:]
        act.output.append(output)
        nodes.append(act)
    new_graph = helper.make_graph(
        nodes, graph.name, [data_input], list(graph.output), initializer=initializers, doc_string=graph.doc_string
    )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.CopyFrom(new_graph)
    return _check(out)
