"""Every error message stablenn raises, in one place.

Each function builds one message and returns the built-in exception that carries it;
callers ``raise`` the result.  A message names the argument in backticks, says what is
accepted, shows what was received and, where there is one, suggests the fix.  The test
suite calls every function here (``tests/test_messages.py``).

Sections: core (public functions), audit, networks, proofs, streaming, gradients, fast
paths.  Add new messages to your section; never build message text elsewhere.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []  # private module: nothing re-exported


def describe(value: Any) -> str:
    """Short, safe description of a received value for an error message."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{type(value).__module__.split('.')[0]}.{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


# ---------------------------------------------------------------- core
def not_an_array(name: str, value: Any) -> TypeError:
    return TypeError(
        f"`{name}` must be an array of a library the array API standard covers (NumPy, "
        f"PyTorch, JAX, CuPy, Dask, array-api-strict); got {describe(value)}. "
        f"Wrap Python numbers and lists first, e.g. numpy.asarray({name})."
    )


def mixed_backends(kinds: dict[str, str]) -> TypeError:
    listed = ", ".join(f"`{name}` is a {kind} array" for name, kind in kinds.items())
    return TypeError(
        f"all array arguments must come from one array library; got: {listed}. "
        "Convert them to one library (and one device) first."
    )


def complex_not_supported(name: str, value: Any) -> TypeError:
    return TypeError(
        f"`{name}` must have a real dtype (floating, integer or boolean); got {describe(value)}. "
        "Complex input is not supported: pass the real part or the magnitude explicitly."
    )


def not_numeric(name: str, value: Any) -> TypeError:
    return TypeError(
        f"`{name}` must have a real numeric dtype (floating, integer or boolean); got {describe(value)}."
    )


def axis_type(name: str, value: Any) -> TypeError:
    return TypeError(f"`{name}` must be None, an int or a tuple of ints; got {describe(value)}.")


def axis_single(name: str, value: Any) -> TypeError:
    return TypeError(f"`{name}` must be a single int for this function; got {describe(value)}.")


def axis_out_of_range(name: str, value: int, ndim: int) -> IndexError:
    return IndexError(
        f"`{name}` {value} is out of range for an array with {ndim} dimension"
        f"{'' if ndim == 1 else 's'}; accepted: {-ndim} to {ndim - 1}."
        if ndim
        else f"`{name}` {value} is out of range: the array is 0-dimensional and has no axes; use axis=None or axis=()."
    )


def axis_repeated(name: str, value: Any, ndim: int) -> ValueError:
    return ValueError(
        f"`{name}` must not name an axis twice; got {value!r} for an array with {ndim} dimensions."
    )


def not_broadcastable(name: str, shape: tuple[Any, ...], target_name: str, target: tuple[Any, ...]) -> ValueError:
    return ValueError(
        f"`{name}` must be broadcastable to the shape of `{target_name}` {target}; got shape {shape}."
    )


def shift_shape(shape: tuple[Any, ...], reduced: tuple[Any, ...], keep: tuple[Any, ...]) -> ValueError:
    return ValueError(
        f"`shift` must be a scalar or an array broadcastable to the reduced shape {reduced} "
        f"(or to the keepdims shape {keep}); got shape {shape}."
    )


def shift_not_finite(value: Any) -> ValueError:
    return ValueError(
        f"`shift` must be finite: the identity log sum e^x = a + log sum e^(x - a) needs a real a; "
        f"got {describe(value)} holding a non-finite value. Pass shift=None to shift by the largest term."
    )


def flag_type(name: str, value: Any) -> TypeError:
    return TypeError(f"`{name}` must be True or False; got {describe(value)}.")


def reduction_value(value: Any) -> ValueError:
    return ValueError(f"`reduction` must be one of 'none', 'mean', 'sum'; got {value!r}.")


def label_smoothing_value(value: Any) -> ValueError:
    return ValueError(f"`label_smoothing` must be a real number in [0, 1]; got {value!r}.")


def targets_shape(logits_shape: tuple[Any, ...], index_shape: tuple[Any, ...], got: tuple[Any, ...]) -> ValueError:
    return ValueError(
        f"`targets` must have the shape of `logits` {logits_shape} (class probabilities) or "
        f"{index_shape} (class indices); got {got}."
    )


def targets_same_shape(logits_shape: tuple[Any, ...], got: tuple[Any, ...]) -> ValueError:
    return ValueError(f"`targets` must have the shape of `logits` {logits_shape}; got {got}.")


def targets_dtype(value: Any) -> TypeError:
    return TypeError(
        f"`targets` must hold integer class indices or floating class probabilities; got {describe(value)}."
    )


def prob_targets_ignore_index() -> ValueError:
    return ValueError(
        "`ignore_index` applies to integer class-index targets only; got floating (probability) "
        "targets. Mask the rows yourself, or pass class indices."
    )


def class_index_range(low: int, high: int, n_classes: int, ignore_index: Any) -> ValueError:
    extra = f" (or `ignore_index` {ignore_index})" if ignore_index is not None else ""
    return ValueError(
        f"`targets` must hold class indices in [0, {n_classes - 1}]{extra}; got values from {low} to {high}."
    )


def labels_range(low: float, high: float) -> ValueError:
    return ValueError(
        f"`targets` must hold probabilities in [0, 1]; got values from {low!r} to {high!r}."
    )


def weight_shape(name: str, expected: str, got: tuple[Any, ...]) -> ValueError:
    return ValueError(f"`{name}` must have shape {expected}; got {got}.")


def ignore_index_type(value: Any) -> TypeError:
    return TypeError(f"`ignore_index` must be None or an int; got {describe(value)}.")


def no_classes(shape: tuple[Any, ...], axis: int) -> ValueError:
    return ValueError(f"`logits` must have at least one class along axis {axis}; got shape {shape}.")



# ---------------------------------------------------------------- networks
# stablenn.networks: the network description, the sigmoid/tanh rewrite, collapse, the
# PyTorch / scikit-learn / ONNX adapters and the `stablenn convert` command.


def networks_weight_kind(where: str, name: str, value: Any) -> TypeError:
    return TypeError(
        f"`{name}` of {where} must be a real floating (or integer) array; got {describe(value)}. "
        "Pass float32 or float64 weights."
    )


def networks_weight_shape(where: str, value: Any) -> ValueError:
    return ValueError(
        f"`weight` of {where} must be 2-D with shape (inputs, outputs), the layer computing "
        f"x @ weight + bias; got {describe(value)}. A PyTorch-style (outputs, inputs) matrix "
        "must be transposed first."
    )


def networks_bias_shape(where: str, n_out: int, value: Any) -> ValueError:
    return ValueError(
        f"`bias` of {where} must have shape ({n_out},), one entry per output of `weight`; "
        f"got {describe(value)}."
    )


def networks_not_finite(where: str, name: str, count: int, index: tuple[int, ...], value: float) -> ValueError:
    return ValueError(
        f"`{name}` of {where} must be finite; got {count} non-finite "
        f"entr{'y' if count == 1 else 'ies'} (the first at {list(index)} is {value}). "
        "A network with inf or NaN parameters has no equivalent rewrite: retrain or repair it."
    )


def networks_unknown_activation(where: str, value: Any, accepted: tuple[str, ...]) -> ValueError:
    names = ", ".join(f"'{a}'" for a in accepted)
    return ValueError(f"`activation` of {where} must be one of {names}; got {describe(value)}.")


def networks_softmax_hidden(where: str) -> ValueError:
    return ValueError(
        f"{where} is a hidden layer with activation 'softmax'; softmax is accepted on the output "
        "layer only. Move it to the last layer or use an element-wise activation."
    )


def networks_no_layers(value: Any) -> ValueError:
    return ValueError(f"`layers` must hold at least one Layer; got {describe(value)}.")


def networks_not_a_layer(index: int, value: Any) -> TypeError:
    return TypeError(
        f"`layers[{index}]` must be a stablenn.networks.Layer; got {describe(value)}. "
        "Build it with Layer(weight, bias, activation)."
    )


def networks_shapes_do_not_chain(where: str, n_in: int, previous: str, n_prev: int) -> ValueError:
    return ValueError(
        f"{where} takes {n_in} inputs but {previous} gives {n_prev} outputs; the shapes do not "
        f"chain. Give {where} a weight of shape ({n_prev}, outputs)."
    )


def networks_input_not_array(value: Any) -> TypeError:
    return TypeError(
        f"`x` must be an array of a library the array API standard covers (NumPy, PyTorch, "
        f"JAX, CuPy, Dask, array-api-strict); got {describe(value)}."
    )


def networks_input_kind(value: Any) -> TypeError:
    return TypeError(f"`x` must be a real (or integer) array; got {describe(value)}.")


def networks_input_width(n_in: int, value: Any) -> ValueError:
    return ValueError(
        f"`x` must have shape (..., {n_in}), one row of {n_in} features per sample; got "
        f"{describe(value)}."
    )


def networks_collapse_nonlinear(where: str, activation: str) -> ValueError:
    return ValueError(
        f"collapse needs every hidden layer to be affine ('identity'), but {where} has "
        f"activation '{activation}'; a network with a non-linear hidden unit is not one affine "
        "map. Only the output layer may keep a non-linear activation."
    )


def networks_rewrite_overflow(where: str, name: str) -> ValueError:
    return ValueError(
        f"rewriting {where} makes `{name}` overflow its dtype (a weight or bias above half the "
        "largest finite value is doubled by tanh_to_sigmoid); the rewrite would not be exact. "
        "Rescale the network or convert it in a wider dtype."
    )


def networks_unsupported_model(value: Any) -> TypeError:
    return TypeError(
        "`model` must be a stablenn.networks.Network, a torch.nn.Sequential, a fitted "
        "sklearn MLPClassifier or MLPRegressor, or an onnx.ModelProto; got "
        f"{describe(value)}. Other models can be described with Network and Layer."
    )


def networks_torch_container(value: Any) -> TypeError:
    return TypeError(
        "`model` must be a torch.nn.Sequential (nested Sequentials allowed) of Linear, "
        f"Sigmoid, Tanh, ReLU and Identity modules; got {describe(value)}."
    )


def networks_torch_module(path: str, value: Any) -> TypeError:
    return TypeError(
        f"module `{path}` is a {type(value).__module__}.{type(value).__name__}, which cannot be "
        "converted; accepted: torch.nn Linear, Sigmoid, Tanh, ReLU, Identity and Sequential, "
        "and stablenn.torch Sigmoid and Tanh. Remove it (e.g. Dropout in inference) or describe "
        "the network with stablenn.networks.Network."
    )


def networks_torch_order(path: str, activation: str, reason: str) -> ValueError:
    return ValueError(
        f"module `{path}` ({activation}) {reason}; each activation must follow a Linear module "
        "and each Linear may be followed by at most one activation."
    )


def networks_sklearn_not_fitted(value: Any) -> ValueError:
    return ValueError(
        f"`model` must be a fitted scikit-learn MLP (with `coefs_`); got an unfitted "
        f"{type(value).__name__}. Call fit(X, y) first."
    )


def networks_sklearn_activation(attribute: str, value: Any, accepted: tuple[str, ...]) -> ValueError:
    names = ", ".join(f"'{a}'" for a in accepted)
    return ValueError(f"`model.{attribute}` must be one of {names}; got {describe(value)}.")


def networks_onnx_structure(detail: str) -> ValueError:
    return ValueError(
        f"the ONNX graph is not a feed-forward chain stablenn can convert: {detail}. Expected one "
        "input, one output, and a chain of Gemm or MatMul+Add nodes with Sigmoid, Tanh, Relu "
        "or Identity between them (Softmax last)."
    )


def networks_onnx_node(index: int, name: str, op_type: str, reason: str) -> ValueError:
    return ValueError(
        f"ONNX node {index} '{name}' ({op_type}) {reason}. Supported: Gemm (transA=0), MatMul "
        "(+ Add), Sigmoid, Tanh, Relu, Identity, and Softmax on the last axis as the last node."
    )


def networks_onnx_dtype(name: str, elem_type: str) -> TypeError:
    return TypeError(
        f"ONNX tensor '{name}' has element type {elem_type}; accepted: FLOAT16, FLOAT, DOUBLE."
    )


def networks_compare_shapes(first: Any, second: Any) -> ValueError:
    return ValueError(
        f"the two models must give outputs of the same shape to be compared; got {describe(first)} "
        f"and {describe(second)}."
    )


def networks_cli_missing(path: str) -> ValueError:
    return ValueError(f"`MODEL` must be an existing ONNX file; '{path}' does not exist.")


def networks_cli_pickle(path: str) -> ValueError:
    return ValueError(
        f"`MODEL` '{path}' is a pickle file (PyTorch .pt/.pth, joblib or pickle); stablenn "
        "refuses to load pickles because loading one can run arbitrary code. Convert PyTorch "
        "and scikit-learn models in Python (stablenn.networks.sigmoid_to_tanh(model)) or "
        "export them to ONNX first."
    )


def networks_cli_not_onnx(path: str, reason: str) -> ValueError:
    return ValueError(f"`MODEL` '{path}' is not a valid ONNX model ({reason}); export it with torch.onnx or onnx.helper.")


def networks_cli_same_path(path: str) -> ValueError:
    return ValueError(
        f"`-o/--output` must differ from `MODEL` ('{path}'); the original is never overwritten. "
        "Choose another output path."
    )


def networks_cli_samples(value: Any) -> ValueError:
    return ValueError(f"`--samples` must be a positive integer; got {describe(value)}.")


def networks_cli_onnxruntime(path: str, reason: str) -> ValueError:
    return ValueError(
        f"the converted model was written to '{path}', but onnxruntime cannot run the models to "
        f"measure the difference ({reason}); check the opset and element types it supports."
    )


# ---------------------------------------------------------------- audit machinery
def audit_unknown_dtype(value: Any, accepted: tuple[str, ...]) -> TypeError:
    return TypeError(
        f"`dtype` must name a floating-point format the audit knows ({', '.join(accepted)}); "
        f"got {describe(value)}. Pass one of these names, e.g. dtype=\"float32\"."
    )


def audit_not_exact_value(value: Any) -> TypeError:
    return TypeError(
        "`value` must be an exact number: an mpmath mpf (or its raw tuple), a "
        f"fractions.Fraction, an int or a float; got {describe(value)}."
    )


def audit_not_representable(value: float, dtype: str) -> ValueError:
    return ValueError(
        f"values measured in {dtype} must be representable in {dtype}; got {value!r}. "
        f"Convert the results to {dtype} (or round the exact value with round_mpf) before "
        "taking ULP distances."
    )


def audit_unknown_function(name: Any, accepted: tuple[str, ...]) -> ValueError:
    return ValueError(
        f"`function` must be a public function of stablenn that the audit measures; got "
        f"{describe(name)}. Accepted: {', '.join(accepted)}."
    )


def audit_unknown_backend(name: Any, accepted: tuple[str, ...]) -> ValueError:
    return ValueError(
        f"`backend` must be one of {', '.join(accepted)}; got {describe(name)}."
    )


def audit_backend_lacks_dtype(backend: str, dtype: str, others: tuple[str, ...]) -> TypeError:
    return TypeError(
        f"`dtype` {dtype} is not available on the {backend} backend; measure it with "
        f"backend={' or '.join(repr(o) for o in others)} instead."
    )


def audit_bad_samples(value: Any) -> ValueError:
    return ValueError(f"`samples` must be a positive integer; got {describe(value)}.")


def audit_oracle_precision(function: str, limit: int) -> ValueError:
    return ValueError(
        f"the mpmath oracle could not decide the correct rounding of `{function}` within "
        f"{limit} bits of precision; the exact value lies on (or extremely near) a rounding "
        "boundary. Report the input: it needs an exact special case in the oracle."
    )


# ---------------------------------------------------------------- proofs
def unknown_proof(name: Any, available: tuple[str, ...]) -> ValueError:
    return ValueError(
        f"`name` must name one of stablenn's proofs; got {describe(name)}. "
        f"Available: {', '.join(available)}. Run `stablenn prove --list` to see them with titles."
    )


def proof_not_sympy(where: str, value: Any) -> TypeError:
    return TypeError(
        f"the {where} must be a SymPy expression; got {describe(value)}. "
        "Build it from SymPy objects, e.g. sympy.exp(x) rather than math.exp(x)."
    )


def proof_without_steps(name: str) -> ValueError:
    return ValueError(
        f"`parts` of proof {name!r} must hold at least one part, each with at least one step; "
        "got an empty list. Start each part with its left-hand side as the first Step."
    )


def proof_missing_domain(name: str, symbols: list[str]) -> ValueError:
    return ValueError(
        f"`assumptions` of proof {name!r} must give a domain to every free variable; "
        f"got none for {', '.join(symbols)}. Add Assumption(symbol, domain), e.g. "
        "Assumption(x, sympy.S.Reals)."
    )


def proof_bad_points(value: Any) -> ValueError:
    return ValueError(
        f"`points` must be a positive integer (random points per part for the mpmath check); "
        f"got {describe(value)}. The default is 8."
    )


def proof_bad_dps(value: Any) -> ValueError:
    return ValueError(
        f"`dps` must be an integer from 20 to 1000 (decimal digits of the mpmath check); "
        f"got {describe(value)}. The default is 50."
    )


def proof_bad_condition(title: str, value: Any) -> ValueError:
    return ValueError(
        f"the `condition` of part {title!r} must be a relation in one variable, or an And of "
        f"such relations (e.g. sympy.Ge(x, 0)); got {describe(value)}."
    )


def proof_domain_cycle(symbols: list[str]) -> ValueError:
    return ValueError(
        f"the domains of {', '.join(symbols)} refer to each other, so no values can be drawn; "
        "got a cycle. Give one of them a domain that names no other variable (e.g. S.Naturals)."
    )


# ---------------------------------------------------------------- audit expressions
# stablenn.audit._expr: the formula parser (`stablenn audit "log(1 + exp(x))"`) and the
# evaluators of a parsed formula.  A refused formula is shown with a caret under the
# offending character, followed by what the language accepts.


def _expr_refused(text: str, pos: int, problem: str) -> ValueError:
    from stablenn.audit._expr import accepted_summary  # lazy: the parser imports this module

    shown = "".join(c if c.isprintable() else " " for c in text)
    width = 72
    start = 0
    if len(shown) > width:
        start = max(0, min(pos - width // 2, len(shown) - width))
    window = shown[start : start + width]
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + width < len(shown) else ""
    caret = " " * (len(prefix) + pos - start) + "^"
    return ValueError(
        f"`formula` is not accepted at column {pos + 1}: {problem}.\n"
        f"    {prefix}{window}{suffix}\n"
        f"    {caret}\n"
        f"accepted: {accepted_summary()}"
    )


def expr_not_text(value: Any) -> TypeError:
    return TypeError(
        f"`formula` must be a string such as \"log(1 + exp(x))\"; got {describe(value)}."
    )


def expr_too_long(length: int, limit: int) -> ValueError:
    return ValueError(
        f"`formula` must be at most {limit} characters long; got {length} characters. "
        "Audit the parts of a long formula separately."
    )


def expr_empty(text: str) -> ValueError:
    from stablenn.audit._expr import accepted_summary

    return ValueError(
        f"`formula` must contain an expression, such as \"log(1 + exp(x))\"; got {text!r}.\n"
        f"accepted: {accepted_summary()}"
    )


def expr_too_deep(text: str, pos: int, limit: int) -> ValueError:
    return _expr_refused(
        text, pos, f"nesting deeper than {limit} levels (parentheses, calls and chains of operators all count)"
    )


def expr_number_exponent(text: str, pos: int, digits: int) -> ValueError:
    return _expr_refused(text, pos, f"an exponent longer than {digits} digits")


def expr_after_number(text: str, pos: int) -> ValueError:
    return _expr_refused(
        text, pos, "a number must be followed by an operator, ')' or ','; write 2*x, not 2x"
    )


def expr_underscore_name(text: str, pos: int, name: str) -> ValueError:
    return _expr_refused(text, pos, f"names starting with '_' are not accepted (got `{name}`)")


def expr_keyword(text: str, pos: int, name: str) -> ValueError:
    return _expr_refused(
        text, pos, f"the Python keyword `{name}` is not accepted (a formula has no lambdas, conditions or statements)"
    )


def expr_bad_character(text: str, pos: int, hint: str) -> ValueError:
    char = text[pos]
    if not hint and not char.isascii():
        hint = "names, numbers and operators are written in ASCII"
    problem = f"the character {char!r} is not accepted" + (f"; {hint}" if hint else "")
    return _expr_refused(text, pos, problem)


def expr_unmatched_close(text: str, pos: int) -> ValueError:
    return _expr_refused(text, pos, "this ')' closes no '('")


def expr_expected_operator(text: str, pos: int, found: str) -> ValueError:
    return _expr_refused(
        text, pos, f"expected an operator (+ - * / **) or the end of the formula, found `{found}`"
    )


def expr_reserved_name(text: str, pos: int, name: str, hint: str) -> ValueError:
    return _expr_refused(text, pos, f"`{name}` is reserved ({hint})")


def expr_function_not_called(text: str, pos: int, name: str) -> ValueError:
    return _expr_refused(text, pos, f"`{name}` is a function: call it, as in {name}(x)")


def expr_unclosed(text: str, pos: int, open_pos: int, found: str) -> ValueError:
    what = f"`{found}`" if found else "the end of the formula"
    return _expr_refused(
        text, pos, f"expected ',' or ')' to close the '(' at column {open_pos + 1}, found {what}"
    )


def expr_ends_early(text: str, pos: int) -> ValueError:
    return _expr_refused(
        text, pos, "the formula ends where a number, a variable, a call or '(' should follow"
    )


def expr_expected_operand(text: str, pos: int, found: str) -> ValueError:
    return _expr_refused(
        text, pos, f"expected a number, a variable, a call or '(', found `{found}`"
    )


def expr_unknown_function(text: str, pos: int, name: str) -> ValueError:
    return _expr_refused(
        text, pos, f"unknown function `{name}` (for a product write {name}*(...))"
    )


def expr_arity(text: str, pos: int, name: str, arity: int, got: int) -> ValueError:
    wanted = {-1: "one vector or two or more", 1: "exactly one", 2: "exactly two"}.get(arity, str(arity))
    return _expr_refused(text, pos, f"`{name}` takes {wanted} arguments, got {got}")


def expr_reduction_constant(text: str, pos: int, name: str) -> ValueError:
    return _expr_refused(
        text, pos, f"`{name}` reduces a vector: its argument must contain a variable, as in {name}(exp(v))"
    )


def expr_missing_values(missing: list[str], given: tuple[str, ...]) -> ValueError:
    return ValueError(
        f"`values` must hold the values of every variable of the formula; missing "
        f"{', '.join(missing)} (got values for: {', '.join(given) or 'none'})."
    )


def expr_vector_shape(name: str, shape: tuple[Any, ...]) -> ValueError:
    return ValueError(
        f"`values[{name!r}]` must be a vector (the vector along the last axis): `{name}` is a "
        f"vector variable because it appears inside a reduction such as sum; got shape {shape}."
    )


def expr_scalar_shape(name: str, shape: tuple[Any, ...]) -> ValueError:
    return ValueError(
        f"`values[{name!r}]` must be one number: `{name}` is a scalar variable and this "
        f"evaluator works at one point; got shape {shape}. Evaluate point by point."
    )


def expr_vector_lengths(lengths: dict[str, int]) -> ValueError:
    listed = ", ".join(f"{n}: {k}" for n, k in lengths.items())
    return ValueError(
        f"`values` of the vector variables must all have one length (elementwise operations "
        f"pair their components); got {listed}."
    )


def expr_sympy_primitives(value: Any) -> ValueError:
    return ValueError(f"`primitives` must be 'definition' or 'stable'; got {describe(value)}.")


# ---------------------------------------------------------------- audit command
# stablenn.audit._cli and the modules it drives (_peers, _intervals, _report, _plot,
# _exhaustive): `stablenn audit`.


def audit_unknown_impl(name: Any, accepted: tuple[str, ...]) -> ValueError:
    return ValueError(
        f"`--impl` must name implementations among {', '.join(accepted)}; got {describe(name)}. "
        "Separate several with commas, e.g. --impl stablenn,naive,torch."
    )


def audit_impl_unavailable(name: str, function: str, reason: str) -> ValueError:
    return ValueError(
        f"`--impl {name}` cannot audit {function}: {reason}. Leave --impl out to audit every "
        "implementation that is available."
    )


def audit_impl_lacks_dtype(name: str, dtype: str, dtypes: tuple[str, ...]) -> TypeError:
    return TypeError(
        f"`--dtype {dtype}` is not available to the {name} implementation (it takes "
        f"{', '.join(dtypes)}); choose one of those, or leave {name} out of --impl."
    )


def audit_unknown_subject(text: Any, functions: tuple[str, ...], close: list[str]) -> ValueError:
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    return ValueError(
        f"`FUNCTION` must be a function of stablenn ({', '.join(functions)}) or a formula of "
        f"variables such as \"log(1 + exp(x))\"; got {describe(text)}.{hint}"
    )


def audit_cli_dtype(value: Any, accepted: tuple[str, ...]) -> TypeError:
    return TypeError(f"`--dtype` must be one of {', '.join(accepted)}; got {describe(value)}.")


def audit_bad_range(text: Any, problem: str) -> ValueError:
    return ValueError(
        f"`--range` must be LO:HI or NAME=LO:HI with finite numbers LO < HI; got {describe(text)}: "
        f"{problem}. Example: --range -1e300:1e300."
    )


def audit_range_variable(name: str, variables: tuple[str, ...]) -> ValueError:
    listed = ", ".join(variables) if variables else "none"
    return ValueError(
        f"`--range {name}=...` names no scalar variable of the audited input (scalar variables: "
        f"{listed}); use one of those names, or LO:HI for all of them."
    )


def audit_range_not_scalar(subject: str) -> ValueError:
    return ValueError(
        f"`--range` applies to functions of one scalar input and to the scalar variables of a "
        f"formula; {subject} takes vectors or batches. Leave --range out."
    )


def audit_formula_constant(text: str) -> ValueError:
    return ValueError(
        f"the formula {text!r} has no variable, so there is nothing to sample; write it in "
        "terms of an input such as x, e.g. \"log(1 + exp(x))\"."
    )


def audit_bad_threshold(value: Any) -> ValueError:
    return ValueError(f"`--threshold` must be a finite number of ULPs >= 0; got {describe(value)}.")


def audit_plot_suffix(path: str) -> ValueError:
    return ValueError(
        f"`--plot` must name a .png or .svg file (the suffix chooses the format); got {path!r}."
    )


def audit_plot_write(path: str, reason: str) -> ValueError:
    return ValueError(f"`--plot` could not write {path!r}: {reason}. Check that the folder exists and is writable.")


def audit_exhaustive_subject(subject: str, accepted: tuple[str, ...]) -> ValueError:
    return ValueError(
        f"`--exhaustive` runs every float32 input of a function of one scalar input "
        f"({', '.join(accepted)}); got {subject!r}. Audit it without --exhaustive."
    )


def audit_exhaustive_dtype(dtype: str) -> TypeError:
    return TypeError(
        f"`--exhaustive` covers the 2**32 float32 inputs only; got --dtype {dtype}. Pass "
        "--dtype float32 (other dtypes: sampled audits)."
    )


def audit_grad_function(function: str, accepted: tuple[str, ...]) -> ValueError:
    return ValueError(
        f"`--grad` audits the gradient of one of {', '.join(accepted)}; got {function!r}. "
        "Pick one of those (formulas have no --grad)."
    )


def audit_option_conflict(first: str, second: str) -> ValueError:
    return ValueError(f"`{first}` and `{second}` cannot be combined; run them as two audits.")


def audit_all_with_subject(subject: str) -> ValueError:
    return ValueError(
        f"`--all` audits every function; it takes no FUNCTION, got {subject!r}. Drop one of them."
    )


def audit_missing_subject() -> ValueError:
    return ValueError(
        "`stablenn audit` needs a FUNCTION (e.g. softplus), a formula in quotes (e.g. "
        "\"log(1 + exp(x))\"), or --all."
    )


def audit_bad_processes(value: Any) -> ValueError:
    return ValueError(f"`--processes` must be a positive integer; got {describe(value)}.")


# ---------------------------------------------------------------- streaming
# stablenn.streaming (the mergeable log-sum-exp state, streaming softmax and losses,
# importance sampling) and the Dask fast paths of stablenn._fast.dask.


def streaming_no_chunk(what: str) -> ValueError:
    return ValueError(
        f"{what} has seen no chunk yet, so its result has no shape or dtype; got an empty "
        "stream. Call update(chunk) at least once (a chunk of length 0 along the reduced "
        "axes is fine: it gives the empty sum's answer)."
    )


def streaming_empty_iterable(name: str) -> ValueError:
    return ValueError(f"`{name}` must yield at least one chunk; got an empty iterable.")


def streaming_chunk_backend(name: str, expected: str, value: Any) -> TypeError:
    return TypeError(
        f"`{name}` must be a {expected} array like the earlier chunks; got {describe(value)}. "
        "Convert every chunk to one array library first."
    )


def streaming_chunk_dtype(name: str, expected: str, value: Any) -> TypeError:
    return TypeError(
        f"`{name}` must have the dtype {expected} of the earlier chunks; got {describe(value)}. "
        f"Convert every chunk to one dtype first (e.g. astype({expected}))."
    )


def streaming_chunk_ndim(name: str, expected: int, value: Any) -> ValueError:
    return ValueError(
        f"`{name}` must have {expected} dimension{'' if expected == 1 else 's'} like the "
        f"earlier chunks; got {describe(value)}."
    )


def streaming_chunk_shape(name: str, axes: Any, expected: tuple[Any, ...], value: Any) -> ValueError:
    return ValueError(
        f"`{name}` must match the earlier chunks outside the reduced axes {axes}, whose other "
        f"dimensions are {expected}; got {describe(value)}. Chunks may differ only along "
        "the reduced axes."
    )


def streaming_merge_kind(cls: str, value: Any) -> TypeError:
    return TypeError(f"`other` must be a {cls}; got {describe(value)}.")


def streaming_merge_mismatch(cls: str, what: str, mine: Any, theirs: Any) -> Exception:
    text = (
        f"cannot merge two {cls} states of different {what}: this one has {mine}, `other` has "
        f"{theirs}. Merge only states built with the same options from chunks of one array."
    )
    return TypeError(text) if what in ("dtype", "array library") else ValueError(text)


def streaming_not_reiterable(value: Any) -> TypeError:
    return TypeError(
        "`chunks` must be readable twice (a first pass for the normaliser, a second for the "
        f"normalised chunks); got a one-shot iterator, {describe(value)}. Pass a sequence, "
        "an object whose __iter__ starts over, or a function returning a fresh iterator."
    )


def streaming_second_pass(first: int, second: int) -> ValueError:
    return ValueError(
        f"the second pass over `chunks` gave {second} values along the axis but the first gave "
        f"{first}; the chunks changed between the passes. Pass chunks that read the same data "
        "every time."
    )


def streaming_loss_item(index: int, value: Any, accepted: str) -> TypeError:
    return TypeError(f"each item of `chunks` must be a tuple {accepted}; item {index} is {describe(value)}.")


def streaming_loss_reduction(value: Any) -> ValueError:
    return ValueError(
        f"`reduction` of a streamed loss total must be 'mean' or 'sum'; got {value!r}. For "
        "per-element losses use the function form with reduction='none', which yields them "
        "chunk by chunk."
    )


def dask_unknown_chunks(name: str, axis: int, value: Any) -> ValueError:
    return ValueError(
        f"`{name}` has unknown chunk sizes along axis {axis}, which this function needs as "
        f"one chunk; got {describe(value)}. Call {name}.compute_chunk_sizes() first, or "
        "rechunk that axis to a single chunk."
    )


# ---------------------------------------------------------------- gradients
def grad_not_differentiable(function: str, name: str, value: Any, hint: str) -> TypeError:
    return TypeError(
        f"`{name}` of {function} is not differentiable (as in PyTorch); got {describe(value)} "
        f"being differentiated (requires_grad, or traced by jax.grad). {hint}"
    )


def grad_residual_mode(name: str, value: Any) -> ValueError:
    return ValueError(
        f"`{name}` must be 'full', 'half' or 'none' (what the backward pass keeps besides the "
        f"output: a residual of the output's width, of half its width, or nothing); got {value!r}."
    )


def grad_unknown_function(name: Any, accepted: tuple[str, ...]) -> ValueError:
    return ValueError(
        f"`function_name` must name a differentiable stablenn function, one of "
        f"{', '.join(accepted)}; got {name!r}."
    )


def grad_jax_x64(dtype: Any) -> TypeError:
    return TypeError(
        f"JAX computes in float32 unless 64-bit floats are enabled; got input of dtype {dtype}. "
        "Call jax.config.update('jax_enable_x64', True) before measuring float64 gradients."
    )


def grad_module_dim(module: str, value: Any) -> TypeError:
    return TypeError(
        f"`dim` of stablenn.torch.{module} must be an int (the axis to normalise); got "
        f"{describe(value)}. PyTorch's implicit choice of dim is deprecated: pass it, e.g. "
        f"{module}(dim=-1)."
    )


def grad_fast_rule(function: str, device: Any) -> ValueError:
    return ValueError(
        f"a fast gradient rule for `{function}` on device type {device!r} is already registered; "
        "each (function, device type) takes one entry."
    )


# ---------------------------------------------------------------- CPU fast paths and bench
def bench_repeat(value: Any) -> ValueError:
    return ValueError(
        f"`--repeat` must be at least 7 (the median of fewer rounds is too noisy on a shared "
        f"machine); got {describe(value)}. Use the default 9, or more."
    )


def bench_no_workload(words: Any, names: Any) -> ValueError:
    listed = ", ".join(repr(n) for n in names)
    return ValueError(
        f"`--only` {list(words)!r} matches no workload; the workloads are {listed}. "
        "Pass words contained in their names, e.g. --only sigmoid bce."
    )
