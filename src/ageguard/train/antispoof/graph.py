"""The ONNX graph of the liveness model, built from a frozen backbone and a trained head.

Backbone: the first three stages of the product's RetinaFace MobileNet-0.25 (the face detector's own
feature extractor, MIT licence), frozen. Its activations at four depths are pooled (mean and standard
deviation per channel) on each of the two crops and log-compressed: the texture statistics that show
moiré, halftone, paper, screen gamut and the medium's edges. The same graph computes the training
features (``features`` output) and, with the head appended, the served score (``live`` output), so
training and serving cannot drift apart.

Inputs ``context`` and ``face``: N x 3 x S x S float32 RGB 0..255. Outputs: ``features`` N x 2D (face
features then context features) and, with a head, ``live`` N (probability of a live face).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

# The backbone's activations that are pooled (LeakyRelu outputs after these convolutions).
TAPS = (
    "/fx/stage1/stage1.2/stage1.2.1/stage1.2.1.0/Conv_output_0",
    "/fx/stage1/stage1.5/stage1.5.1/stage1.5.1.0/Conv_output_0",
    "/fx/stage2/stage2.5/stage2.5.1/stage2.5.1.0/Conv_output_0",
    "/fx/stage3/stage3.1/stage3.1.1/stage3.1.1.0/Conv_output_0",
)
MEAN_BGR = (104.0, 117.0, 123.0)  # the RetinaFace training mean
OPSET = 11


def _activation_after(model: onnx.ModelProto, tensor: str) -> str:
    for node in model.graph.node:
        if tensor in node.input and node.op_type in ("LeakyRelu", "Relu", "PRelu"):
            return str(node.output[0])
    raise ValueError(f"no activation after {tensor}")


def backbone(detector_onnx: Path) -> tuple[onnx.ModelProto, list[str]]:
    """The detector's graph cut after its last tapped activation; returns it and the tapped names."""
    full = onnx.shape_inference.infer_shapes(onnx.load(str(detector_onnx)))
    taps = [_activation_after(full, t) for t in TAPS]
    cut = onnx.utils.Extractor(full).extract_model([full.graph.input[0].name], taps)
    return cut, taps


def feature_width(model: onnx.ModelProto, taps: list[str]) -> int:
    """Pooled features per crop: mean and standard deviation of every tapped channel."""
    shapes = {v.name: v.type.tensor_type.shape for v in [*model.graph.value_info, *model.graph.output]}
    return sum(2 * shapes[t].dim[1].dim_value for t in taps)


def _const(name: str, value: npt.NDArray[np.generic]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def build(
    detector_onnx: Path,
    head: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] | None = None,
    mean: npt.NDArray[np.float32] | None = None,
    scale: npt.NDArray[np.float32] | None = None,
) -> onnx.ModelProto:
    """The features graph, plus the head (standardise, Linear-ReLU-...-Linear, sigmoid) when given."""
    bb, taps = backbone(detector_onnx)
    bb_input = bb.graph.input[0].name
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = list(bb.graph.initializer)
    p = "ag_"  # prefix of our own tensors
    inits += [
        _const(p + "bgr", np.array([2, 1, 0], np.int64)),
        _const(p + "mean", np.array(MEAN_BGR, np.float32).reshape(1, 3, 1, 1)),
        _const(p + "one", np.array(1.0, np.float32)),
    ]
    nodes += [
        helper.make_node("Concat", ["face", "context"], [p + "both"], axis=0),
        helper.make_node("Gather", [p + "both", p + "bgr"], [p + "both_bgr"], axis=1),
        helper.make_node("Sub", [p + "both_bgr", p + "mean"], [bb_input]),
    ]
    nodes += list(bb.graph.node)
    pooled: list[str] = []
    for k, tap in enumerate(taps):
        m, sq, m2, var, sd = (f"{p}{name}{k}" for name in ("m", "sq", "m2", "var", "sd"))
        nodes += [
            helper.make_node("ReduceMean", [tap], [m], axes=[2, 3], keepdims=0),
            helper.make_node("Mul", [tap, tap], [p + f"t2_{k}"]),
            helper.make_node("ReduceMean", [p + f"t2_{k}"], [sq], axes=[2, 3], keepdims=0),
            helper.make_node("Mul", [m, m], [m2]),
            helper.make_node("Sub", [sq, m2], [var]),
            helper.make_node("Relu", [var], [var + "_pos"]),
            helper.make_node("Sqrt", [var + "_pos"], [sd]),
        ]
        pooled += [m, sd]
    nodes += [
        helper.make_node("Concat", pooled, [p + "pooled"], axis=1),
        helper.make_node("Relu", [p + "pooled"], [p + "pooled_pos"]),
        helper.make_node("Add", [p + "pooled_pos", p + "one"], [p + "pooled_1"]),
        helper.make_node("Log", [p + "pooled_1"], [p + "logf"]),  # 2N x D
    ]
    # 2N x D -> N x 2D (face features, then context features).
    width = feature_width(bb, taps)
    inits += [
        _const(p + "shape3", np.array([2, -1, width], np.int64)),
        _const(p + "shape2", np.array([-1, 2 * width], np.int64)),
    ]
    nodes += [
        helper.make_node("Reshape", [p + "logf", p + "shape3"], [p + "f3"]),
        helper.make_node("Transpose", [p + "f3"], [p + "f3t"], perm=[1, 0, 2]),
        helper.make_node("Reshape", [p + "f3t", p + "shape2"], ["features"]),
    ]
    outputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", "d"])]
    if head is not None:
        assert mean is not None and scale is not None
        inits += [
            _const(p + "mu", mean.astype(np.float32)),
            _const(p + "inv_sd", (1.0 / scale).astype(np.float32)),
        ]
        nodes += [
            helper.make_node("Sub", ["features", p + "mu"], [p + "z0"]),
            helper.make_node("Mul", [p + "z0", p + "inv_sd"], [p + "h0"]),
        ]
        x = p + "h0"
        for k, (w, b) in enumerate(head):
            inits += [_const(f"{p}w{k}", w.astype(np.float32)), _const(f"{p}b{k}", b.astype(np.float32))]
            nodes.append(helper.make_node("Gemm", [x, f"{p}w{k}", f"{p}b{k}"], [f"{p}g{k}"], transB=1))
            x = f"{p}g{k}"
            if k < len(head) - 1:
                nodes.append(helper.make_node("Relu", [x], [x + "_r"]))
                x = x + "_r"
        inits.append(_const(p + "flat", np.array([-1], np.int64)))
        nodes += [
            helper.make_node("Sigmoid", [x], [p + "prob"]),
            helper.make_node("Reshape", [p + "prob", p + "flat"], ["live"]),
        ]
        outputs.append(helper.make_tensor_value_info("live", TensorProto.FLOAT, ["n"]))
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", 3, "s", "s"])
        for name in ("context", "face")
    ]
    graph = helper.make_graph(nodes, "ageguard_antispoof", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ageguard")
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model
