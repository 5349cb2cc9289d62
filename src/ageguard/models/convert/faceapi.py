"""face-api's AgeGenderNet rebuilt as an ONNX graph from its TensorFlow.js weights manifest.

The graph mirrors @vladmandic/face-api 1.7.15 ``src/xception/TinyXception.ts`` (two main blocks)
and ``src/ageGenderNet/AgeGenderNet.ts`` op for op, so the ONNX model computes what face-api
computes:

- input: N x 112 x 112 x 3 float RGB in 0..255 (NHWC, as face-api's batch tensor);
  ``(x - [122.782, 117.001, 104.298]) / 255`` happens inside the graph;
- entry flow: 3x3/2 conv + relu, reduction blocks 32->64 (input not activated) and 64->128;
- middle flow: two residual main blocks of three relu + separable convs at 128 channels;
- exit flow: reduction block 128->256, separable conv 256->512, relu;
- head: 7x7/2 valid average pool, then fully connected ``age`` (N,) and softmaxed ``gender``
  (N, 2; index 0 is male).

TF "same" padding puts the odd pixel at the bottom/right; with the fixed 112 px input every
stride-2 layer sees an even size, so pads are written out explicitly as (0, 0, 1, 1).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

MANIFEST = "model/age_gender_model-weights_manifest.json"
INPUT_SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)
NUM_MAIN_BLOCKS = 2
# Pinned so the bytes (and so the SHA-256 pin) do not move with the installed onnx version.
IR_VERSION = 8
OPSET = 13

Weights = dict[str, npt.NDArray[np.float32]]

_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "float16": np.float16,
}


def read_tfjs_weights(manifest_member: str, extracted: Mapping[str, bytes]) -> Weights:
    """Decode a tfjs weights manifest and its shards into float32 arrays, dequantised as tfjs does.

    tfjs dequantises ``uint8``/``uint16`` as ``q * scale + min`` in double precision and stores
    the result as float32; doing the same keeps the converted weights bit-identical to face-api's.
    """
    base = posixpath.dirname(manifest_member)
    groups = json.loads(extracted[manifest_member])
    weights: Weights = {}
    for group in groups:
        buffer = b"".join(extracted[posixpath.join(base, p)] for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = tuple(spec["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            quant = spec.get("quantization")
            stored = np.dtype(_DTYPES[quant["dtype"] if quant else spec["dtype"]]).newbyteorder("<")
            nbytes = count * stored.itemsize
            if offset + nbytes > len(buffer):
                raise ValueError(f"weights shard too short for {spec['name']}")
            raw = np.frombuffer(buffer, dtype=stored, count=count, offset=offset)
            offset += nbytes
            if quant and quant["dtype"] in ("uint8", "uint16"):
                values = (raw.astype(np.float64) * quant["scale"] + quant["min"]).astype(np.float32)
            else:
                values = raw.astype(np.float32)
            weights[spec["name"]] = values.reshape(shape)
        if offset != len(buffer):
            raise ValueError(f"{len(buffer) - offset} unread bytes in weights group {group['paths']}")
    return weights


class _GraphBuilder:
    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, name: str, array: npt.NDArray[np.generic]) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, name: str, perm: tuple[int, ...] | None = None) -> str:
        self.used.add(name)
        array = self.weights[name]
        return self.const(name, array.transpose(perm) if perm else array)

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        out = self._name(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def relu(self, x: str) -> str:
        return self.op("Relu", [x], "relu")

    def conv(self, x: str, prefix: str, stride: int) -> str:
        w = self.weights[f"{prefix}/filters"]
        k = w.shape[0]
        pads = [0, 0, 1, 1] if stride == 2 and k > 1 else [k // 2] * 4
        # tfjs filters are HWIO; ONNX wants OIHW.
        return self.op(
            "Conv",
            [x, self.weight(f"{prefix}/filters", (3, 2, 0, 1)), self.weight(f"{prefix}/bias")],
            prefix.replace("/", "."),
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=pads,
        )

    def separable(self, x: str, prefix: str) -> str:
        channels = self.weights[f"{prefix}/depthwise_filter"].shape[2]
        # depthwise HW C 1 -> C 1 H W, one group per channel.
        dw = self.op(
            "Conv",
            [x, self.weight(f"{prefix}/depthwise_filter", (2, 3, 0, 1))],
            prefix.replace("/", ".") + ".dw",
            kernel_shape=[3, 3],
            strides=[1, 1],
            pads=[1, 1, 1, 1],
            group=int(channels),
        )
        return self.op(
            "Conv",
            [dw, self.weight(f"{prefix}/pointwise_filter", (3, 2, 0, 1)), self.weight(f"{prefix}/bias")],
            prefix.replace("/", ".") + ".pw",
            kernel_shape=[1, 1],
        )

    def reduction_block(self, x: str, prefix: str, activate_input: bool = True) -> str:
        out = self.relu(x) if activate_input else x
        out = self.separable(out, f"{prefix}/separable_conv0")
        out = self.separable(self.relu(out), f"{prefix}/separable_conv1")
        out = self.op("MaxPool", [out], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
        return self.op("Add", [out, self.conv(x, f"{prefix}/expansion_conv", 2)], "add")

    def main_block(self, x: str, prefix: str) -> str:
        out = self.separable(self.relu(x), f"{prefix}/separable_conv0")
        out = self.separable(self.relu(out), f"{prefix}/separable_conv1")
        out = self.separable(self.relu(out), f"{prefix}/separable_conv2")
        return self.op("Add", [out, x], "add")

    def fc(self, x: str, prefix: str) -> str:
        mm = self.op("MatMul", [x, self.weight(f"{prefix}/weights")], prefix.replace("/", ".") + ".mm")
        return self.op("Add", [mm, self.weight(f"{prefix}/bias")], prefix.replace("/", ".") + ".add")


def build_model(weights: Weights) -> onnx.ModelProto:
    g = _GraphBuilder(weights)
    mean = g.const("mean_rgb", np.array(MEAN_RGB, dtype=np.float32).reshape(1, 1, 1, 3))
    scale = g.const("scale", np.array(255.0, dtype=np.float32))
    x = g.op("Sub", ["input", mean], "sub_mean")
    x = g.op("Div", [x, scale], "div_255")
    x = g.op("Transpose", [x], "to_nchw", perm=[0, 3, 1, 2])

    x = g.relu(g.conv(x, "entry_flow/conv_in", 2))
    x = g.reduction_block(x, "entry_flow/reduction_block_0", activate_input=False)
    x = g.reduction_block(x, "entry_flow/reduction_block_1")
    for i in range(NUM_MAIN_BLOCKS):
        x = g.main_block(x, f"middle_flow/main_block_{i}")
    x = g.reduction_block(x, "exit_flow/reduction_block")
    x = g.relu(g.separable(x, "exit_flow/separable_conv"))

    pooled = g.op("AveragePool", [x], "avgpool", kernel_shape=[7, 7], strides=[2, 2])
    flat = g.op("Flatten", [pooled], "flatten", axis=1)
    age_2d = g.fc(flat, "fc/age")
    flat_shape = g.const("age_shape", np.array([-1], dtype=np.int64))
    g.nodes.append(helper.make_node("Reshape", [age_2d, flat_shape], ["age"], name="age"))
    logits = g.fc(flat, "fc/gender")
    g.nodes.append(helper.make_node("Softmax", [logits], ["gender"], name="gender", axis=1))

    unused = set(weights) - g.used
    if unused:
        raise ValueError(f"weights not used by the graph: {sorted(unused)}")

    graph = helper.make_graph(
        g.nodes,
        "faceapi_agegender",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", INPUT_SIZE, INPUT_SIZE, 3])],
        [
            helper.make_tensor_value_info("age", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("gender", TensorProto.FLOAT, ["batch", 2]),
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="ageguard.models.convert.faceapi",
        doc_string="face-api AgeGenderNet (@vladmandic/face-api 1.7.15), MIT licence.",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def convert(extracted: Mapping[str, bytes]) -> bytes:
    return build_model(read_tfjs_weights(MANIFEST, extracted)).SerializeToString()
