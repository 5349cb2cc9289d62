"""Multiply-accumulate counts of ONNX models, from their graphs (used by the bench for every model).

Counts the MACs of the layers that dominate the cost of a CNN: ``Conv`` (and ``ConvTranspose``),
``MatMul`` and ``Gemm``. Element-wise ops, pooling and activations are not counted. FLOPs are reported
as ``2 * MACs`` (one multiply and one add); papers that say "FLOPs" for MobileNets often mean MACs.

Tensor shapes come from ONNX shape inference with the input shape fixed; where that leaves a
shape unknown (data-dependent ops), the model is run once on zeros with onnxruntime to read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, shape_inference

_COUNTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")


@dataclass(frozen=True, slots=True)
class FlopCount:
    """MACs of one inference at the given input shape, in total and per op type."""

    macs: int
    by_op: dict[str, int] = field(default_factory=dict)
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def gflops(self) -> float:
        return self.flops / 1e9


def _load(model: onnx.ModelProto | bytes | str | Path) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return copy
    if isinstance(model, bytes):
        return onnx.load_from_string(model)
    return onnx.load(str(model))


def _shape_of(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if not d.HasField("dim_value") or d.dim_value <= 0:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def count_flops(
    model: onnx.ModelProto | bytes | str | Path,
    input_shape: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
) -> FlopCount:
    """MACs of ``model`` for one run at ``input_shape``.

    ``input_shape``: the full shape of the first graph input (e.g. ``(1, 224, 224, 3)``) or a
    mapping from input names to shapes; ``None`` uses the model's own shapes with batch 1 for
    symbolic dimensions that are first, and fails on other symbolic dimensions.
    """
    proto = _load(model)
    graph = proto.graph
    init_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    if isinstance(input_shape, Mapping):
        wanted = {k: tuple(int(d) for d in v) for k, v in input_shape.items()}
    elif input_shape is not None:
        wanted = {inputs[0].name: tuple(int(d) for d in input_shape)}
    else:
        wanted = {}
    fixed: dict[str, tuple[int, ...]] = {}
    for inp in inputs:
        dims = inp.type.tensor_type.shape.dim
        if inp.name in wanted:
            shape = wanted[inp.name]
            if len(shape) != len(dims):
                raise ValueError(f"input {inp.name!r} has rank {len(dims)}, got shape {shape}")
        else:
            shape = tuple(
                int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else (1 if i == 0 else -1)
                for i, d in enumerate(dims)
            )
            if any(s < 0 for s in shape):
                raise ValueError(f"input {inp.name!r} has symbolic dimensions; pass input_shape")
        for d, size in zip(dims, shape, strict=True):
            d.Clear()
            d.dim_value = size
        fixed[inp.name] = shape
    del graph.value_info[:]

    inferred = shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
    shapes: dict[str, tuple[int, ...] | None] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        shapes[vi.name] = _shape_of(vi)
    for t in graph.initializer:
        shapes[t.name] = tuple(int(d) for d in t.dims)

    needed = []
    for node in graph.node:
        if node.op_type in _COUNTED:
            names = [node.input[0], node.input[1], node.output[0]]
            needed += [n for n in names if shapes.get(n) is None]
    if needed:
        shapes.update(_run_shapes(proto, fixed, sorted(set(needed))))

    by_op: dict[str, int] = {}
    for node in graph.node:
        if node.op_type not in _COUNTED:
            continue
        macs = _node_macs(node, shapes)
        by_op[node.op_type] = by_op.get(node.op_type, 0) + macs
    return FlopCount(macs=sum(by_op.values()), by_op=by_op, input_shapes=fixed)


def _node_macs(node: onnx.NodeProto, shapes: Mapping[str, tuple[int, ...] | None]) -> int:
    x, w, y = (shapes.get(n) for n in (node.input[0], node.input[1], node.output[0]))
    if x is None or w is None or y is None:
        raise ValueError(f"cannot tell the shapes of {node.op_type} node {node.name!r}")
    if node.op_type == "Conv":
        # Each output element: (C_in / group) * prod(kernel) MACs; w is (C_out, C_in/group, k...).
        return math.prod(y) * math.prod(w[1:])
    if node.op_type == "ConvTranspose":
        # Each input element scatters into (C_out / group) * prod(kernel) outputs; w is (C_in, C_out/g, k...).
        return math.prod(x) * math.prod(w[1:])
    if node.op_type == "Gemm":
        trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
        k = x[0] if trans_a else x[1]
        return math.prod(y) * k
    # MatMul: numpy semantics; K is the last axis of A (or its only axis).
    return math.prod(y) * x[-1]


def _run_shapes(
    proto: onnx.ModelProto, inputs: Mapping[str, tuple[int, ...]], names: Sequence[str]
) -> dict[str, tuple[int, ...]]:
    """Shapes of ``names`` read from one onnxruntime run on zeros (for shapes inference left open)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    existing = {o.name for o in probe.graph.output}
    for name in names:
        if name not in existing:
            probe.graph.output.append(helper.ValueInfoProto(name=name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {}
    elem_types = {i.name: i.type.tensor_type.elem_type for i in probe.graph.input}
    for name, shape in inputs.items():
        dtype = helper.tensor_dtype_to_np_dtype(elem_types[name])
        feeds[name] = np.zeros(shape, dtype=dtype)
    values = sess.run(list(names), feeds)
    return {n: tuple(int(d) for d in np.shape(v)) for n, v in zip(names, values, strict=True)}


def parameter_count(model: onnx.ModelProto | bytes | str | Path) -> int:
    """Number of weights (elements of float initializers)."""
    proto = _load(model)
    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
    return sum(math.prod(t.dims) for t in proto.graph.initializer if t.data_type in floats)
