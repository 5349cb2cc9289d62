"""The ONNX graph of the liveness model, built from a frozen backbone and a trained head.

Backbone (``BACKBONES``): a registry model's early layers, frozen and copied into the graph at export.
Its activations at several depths are pooled (mean and standard deviation per channel) on each of the
two crops and log-compressed: the texture statistics that show moiré, halftone, paper, screen gamut
and the medium's edges. The same graph computes the training features (``features`` output) and, with
the head appended, the served score (``live`` output), so training and serving cannot drift apart.

Inputs ``context`` and ``face``: N x 3 x S x S float32 RGB 0..255. Outputs: ``features`` N x 2D (face
features then context features) and, with a head, ``live`` N (probability of a live face).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 11  # at least; a backbone converted at a newer opset keeps its own (ReduceMean axes: < 18)


@dataclass(frozen=True)
class Backbone:
    """A frozen feature extractor: which model-store asset, which tensors are pooled, how it is fed."""

    asset: str
    taps: tuple[str, ...]
    # "bgr_mean": NCHW BGR minus the training mean (RetinaFace); "nhwc_rgb": NHWC RGB 0..255, NHWC taps;
    # "nhwc_bgr_caffe": NHWC BGR minus the ImageNet means (Caffe style), NCHW taps (converted inside).
    layout: Literal["bgr_mean", "nhwc_rgb", "nhwc_bgr_caffe"]
    description: str
    cut_after_activation: bool = False  # taps name convolutions: pool the activation that follows
    # The asset was converted for one input size (faceres-deep: 224): free its spatial sizes so that the
    # shapes inferred for the taps hold for the crops' size too.
    fixed_input_size: bool = False

    # What the layout means, in one place.
    @property
    def nhwc_input(self) -> bool:
        return self.layout.startswith("nhwc")

    @property
    def nhwc_taps(self) -> bool:
        return self.layout == "nhwc_rgb"  # faceres-deep: NHWC in, NCHW inside

    @property
    def mean_bgr(self) -> tuple[float, float, float] | None:
        """The BGR mean the backbone expects subtracted, or None where it takes RGB 0..255."""
        return {"bgr_mean": MEAN_BGR, "nhwc_bgr_caffe": CAFFE_MEAN_BGR}.get(self.layout)


MEAN_BGR = (104.0, 117.0, 123.0)  # the RetinaFace training mean
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # ImageNet means, B G R (faceres-deep's training)
BACKBONES: dict[str, Backbone] = {
    # The product's own face detector (RetinaFace MobileNet-0.25, WIDER FACE), its first three stages.
    "retinaface": Backbone(
        asset="retinaface_mnet025",
        taps=(
            "/fx/stage1/stage1.2/stage1.2.1/stage1.2.1.0/Conv_output_0",
            "/fx/stage1/stage1.5/stage1.5.1/stage1.5.1.0/Conv_output_0",
            "/fx/stage2/stage2.5/stage2.5.1/stage2.5.1.0/Conv_output_0",
            "/fx/stage3/stage3.1/stage3.1.1/stage3.1.1.0/Conv_output_0",
        ),
        layout="bgr_mean",
        description="RetinaFace MobileNet-0.25 stages 1-3 (frozen, from the retinaface_mnet025 asset)",
        cut_after_activation=True,
    ),
    # A general-purpose MobileNetV3 trained on COCO objects: its texture statistics generalise to
    # unseen capture setups better than a face detector's (docs/models/antispoof.md).
    "mobilenetv3": Backbone(
        asset="mobilenetv3_coco",
        taps=("stride4", "stride8", "stride16", "stride16b"),
        layout="nhwc_rgb",
        description="MobileNetV3 (mb3-centernet, COCO) to stride 16, frozen (mobilenetv3_coco asset)",
    ),
    # The age model's MobileNet (HSE faceres-deep, trained on faces for age and gender): texture
    # statistics of a network that has looked at skin, to stride 16.
    "faceres": Backbone(
        asset="faceres_deep",
        taps=(
            "conv_pw_2_relu/clip_by_value",
            "conv_pw_3_relu/clip_by_value",
            "conv_pw_5_relu/clip_by_value",
            "conv_pw_11_relu/clip_by_value",
        ),
        layout="nhwc_bgr_caffe",
        description="HSE faceres-deep MobileNet to stride 16, frozen (faceres_deep asset)",
        fixed_input_size=True,
    ),
}


def _activation_after(model: onnx.ModelProto, tensor: str) -> str:
    for node in model.graph.node:
        if tensor in node.input and node.op_type in ("LeakyRelu", "Relu", "PRelu"):
            return str(node.output[0])
    raise ValueError(f"no activation after {tensor}")


def backbone_graph(spec: Backbone, onnx_path: Path) -> tuple[onnx.ModelProto, list[str]]:
    """The backbone's graph cut after its last tap; returns it and the pooled tensor names."""
    full = onnx.load(str(onnx_path))
    if spec.fixed_input_size:
        dims = full.graph.input[0].type.tensor_type.shape.dim
        spatial = (1, 2) if spec.nhwc_input else (2, 3)
        for name, axis in zip("hw", spatial, strict=True):
            dims[axis].dim_param = name
        del full.graph.value_info[:]
    full = onnx.shape_inference.infer_shapes(full)
    taps = [_activation_after(full, t) for t in spec.taps] if spec.cut_after_activation else list(spec.taps)
    cut = onnx.utils.Extractor(full).extract_model([full.graph.input[0].name], taps)
    return cut, taps


def feature_width(model: onnx.ModelProto, taps: list[str], spec: Backbone) -> int:
    """Pooled features per crop: mean and standard deviation of every tapped channel."""
    shapes = {v.name: v.type.tensor_type.shape for v in [*model.graph.value_info, *model.graph.output]}
    channel_axis = 3 if spec.nhwc_taps else 1
    return sum(2 * shapes[t].dim[channel_axis].dim_value for t in taps)


def _const(name: str, value: npt.NDArray[np.generic]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _namespaced(model: onnx.ModelProto, prefix: str) -> onnx.ModelProto:
    """``model`` with every tensor and node name prefixed, so several backbones share one graph."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    names = {i.name for i in out.graph.input} | {t.name for t in out.graph.initializer}
    names |= {o for n in out.graph.node for o in n.output}
    for node in out.graph.node:
        node.name = prefix + node.name
        node.input[:] = [prefix + i if i in names else i for i in node.input]
        node.output[:] = [prefix + o for o in node.output]
    for value in [*out.graph.input, *out.graph.output, *out.graph.initializer, *out.graph.value_info]:
        value.name = prefix + value.name
    return out


def _pooled_features(
    k: int, spec: Backbone, onnx_path: Path, batch: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], list[str], int, int]:
    """Backbone ``k`` fed with ``batch`` (2N x 3 x S x S RGB) and its taps pooled.

    Returns its nodes, initialisers, the pooled tensors (2N x C each), their total width and its opset.
    """
    cut, taps = backbone_graph(spec, onnx_path)
    width = feature_width(cut, taps, spec)
    p = f"ag{k}_"
    bb = _namespaced(cut, f"bb{k}_")
    taps = [f"bb{k}_{t}" for t in taps]
    bb_input = bb.graph.input[0].name
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = list(bb.graph.initializer)
    prepared = batch  # NCHW RGB 0..255
    if spec.mean_bgr is not None:
        prepared = bb_input if not spec.nhwc_input else p + "centred"
        inits += [
            _const(p + "bgr", np.array([2, 1, 0], np.int64)),
            _const(p + "mean", np.array(spec.mean_bgr, np.float32).reshape(1, 3, 1, 1)),
        ]
        nodes += [
            helper.make_node("Gather", [batch, p + "bgr"], [p + "bgr_in"], axis=1),
            helper.make_node("Sub", [p + "bgr_in", p + "mean"], [prepared]),
        ]
    if spec.nhwc_input:
        nodes.append(helper.make_node("Transpose", [prepared], [bb_input], perm=[0, 2, 3, 1]))
    spatial = [1, 2] if spec.nhwc_taps else [2, 3]
    nodes += list(bb.graph.node)
    pooled: list[str] = []
    for j, tap in enumerate(taps):
        m, sq, m2, var, sd = (f"{p}{name}{j}" for name in ("m", "sq", "m2", "var", "sd"))
        nodes += [
            helper.make_node("ReduceMean", [tap], [m], axes=spatial, keepdims=0),
            helper.make_node("Mul", [tap, tap], [p + f"t2_{j}"]),
            helper.make_node("ReduceMean", [p + f"t2_{j}"], [sq], axes=spatial, keepdims=0),
            helper.make_node("Mul", [m, m], [m2]),
            helper.make_node("Sub", [sq, m2], [var]),
            helper.make_node("Relu", [var], [var + "_pos"]),
            helper.make_node("Sqrt", [var + "_pos"], [sd]),
        ]
        pooled += [m, sd]
    opset = max([o.version for o in bb.opset_import if o.domain in ("", "ai.onnx")], default=OPSET)
    return nodes, inits, pooled, width, opset


def build(
    backbones: Sequence[tuple[Backbone, Path]],
    head: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] | None = None,
    mean: npt.NDArray[np.float32] | None = None,
    scale: npt.NDArray[np.float32] | None = None,
) -> onnx.ModelProto:
    """The features graph of one or more backbones (their features side by side), plus the head
    (standardise, Linear-ReLU-...-Linear, sigmoid) when given."""
    p = "ag_"  # prefix of our own tensors
    nodes = [helper.make_node("Concat", ["face", "context"], [p + "both"], axis=0)]
    inits = [_const(p + "one", np.array(1.0, np.float32))]
    pooled: list[str] = []
    width = 0
    opset = OPSET
    for k, (spec, path) in enumerate(backbones):
        bb_nodes, bb_inits, bb_pooled, bb_width, bb_opset = _pooled_features(k, spec, path, p + "both")
        nodes += bb_nodes
        inits += bb_inits
        pooled += bb_pooled
        width += bb_width
        opset = max(opset, bb_opset)
    nodes += [
        helper.make_node("Concat", pooled, [p + "pooled"], axis=1),
        helper.make_node("Relu", [p + "pooled"], [p + "pooled_pos"]),
        helper.make_node("Add", [p + "pooled_pos", p + "one"], [p + "pooled_1"]),
        helper.make_node("Log", [p + "pooled_1"], [p + "logf"]),  # 2N x D
    ]
    # 2N x D -> N x 2D (face features, then context features).
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="ageguard")
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model
