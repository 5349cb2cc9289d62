"""The trained head as an ONNX graph, built node by node so the bytes depend on the weights alone."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ageguard.train.age.trainer import Head
from ageguard.vision.age.features import FEATURE_DIM

OPSET = 17


def head_onnx(head: Head) -> bytes:
    """``features`` (N x FEATURE_DIM float32) -> ``probs`` (N x 100), input standardisation folded in."""
    inits = [
        numpy_helper.from_array(head.mean.astype(np.float32), "x_mean"),
        numpy_helper.from_array((1.0 / head.scale).astype(np.float32), "x_inv_scale"),
    ]
    nodes = [
        helper.make_node("Sub", ["features", "x_mean"], ["x_centred"]),
        helper.make_node("Mul", ["x_centred", "x_inv_scale"], ["h0"]),
    ]
    current = "h0"
    for i, (w, b) in enumerate(head.layers):
        inits += [numpy_helper.from_array(w.astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(b.astype(np.float32), f"b{i}")]  # fmt: skip
        out = f"z{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out], transB=1))
        if i < len(head.layers) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"h{i + 1}"]))
            out = f"h{i + 1}"
        current = out
    nodes.append(helper.make_node("Softmax", [current], ["probs"], axis=1))
    classes = head.layers[-1][0].shape[0]
    graph = helper.make_graph(
        nodes,
        "ageguard_age_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", FEATURE_DIM])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", classes])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ageguard")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
