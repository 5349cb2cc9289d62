"""TFJS -> ONNX converter (op semantics on small synthetic graphs) and the HSE faceres-deep age model."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest

from ageguard.models.convert import tfjs
from ageguard.models.flops import count_flops, parameter_count

F32 = npt.NDArray[np.float32]


# ------------------------------------------------------------------------------ a tiny TFJS model writer


class GraphBuilder:
    """Writes a TFJS graph model (model.json dict + weight shard) the way tfjs-converter does."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.weights: list[dict[str, Any]] = []
        self.data = bytearray()

    def placeholder(self, name: str, shape: Sequence[int]) -> str:
        dims = [{"size": str(d)} for d in shape]
        self.nodes.append(
            {
                "name": name,
                "op": "Placeholder",
                "attr": {"shape": {"shape": {"dim": dims}}, "dtype": {"type": "DT_FLOAT"}},
            }
        )
        return name

    def const(self, name: str, value: npt.ArrayLike, quant: str | None = None) -> str:
        arr = np.asarray(value)
        dtype = "int32" if arr.dtype.kind in "iu" else "float32"
        arr = arr.astype(dtype)
        spec: dict[str, Any] = {"name": name, "shape": list(arr.shape), "dtype": dtype}
        if quant == "float16":
            spec["quantization"] = {"dtype": "float16"}
            self.data += arr.astype("<f2").tobytes()
        elif quant in ("uint8", "uint16"):
            levels = 255 if quant == "uint8" else 65535
            lo, hi = float(arr.min()), float(arr.max())
            scale = (hi - lo) / levels or 1.0
            q = np.round((arr - lo) / scale).astype("<u1" if quant == "uint8" else "<u2")
            spec["quantization"] = {"dtype": quant, "scale": scale, "min": lo}
            self.data += q.tobytes()
        else:
            self.data += arr.astype("<" + arr.dtype.str[1:]).tobytes()
        self.weights.append(spec)
        tf_type = "DT_INT32" if dtype == "int32" else "DT_FLOAT"
        self.nodes.append({"name": name, "op": "Const", "attr": {"dtype": {"type": tf_type}}})
        return name

    def op(self, name: str, op: str, inputs: Sequence[str], **attr: Any) -> str:
        self.nodes.append(
            {"name": name, "op": op, "input": list(inputs), "attr": {k: _attr(v) for k, v in attr.items()}}
        )
        return name

    def files(self, folder: str = "model") -> dict[str, bytes]:
        model = {
            "format": "graph-model",
            "modelTopology": {"node": self.nodes, "library": {}, "versions": {}},
            "weightsManifest": [{"paths": ["weights.bin"], "weights": self.weights}],
        }
        return {f"{folder}/model.json": json.dumps(model).encode(), f"{folder}/weights.bin": bytes(self.data)}


def _attr(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value}
    if isinstance(value, str):
        return {"s": base64.b64encode(value.encode()).decode()}
    if value and isinstance(value[0], str):
        return {"list": {"s": [base64.b64encode(v.encode()).decode() for v in value]}}
    return {"list": {"i": [str(v) for v in value]}}


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


# ------------------------------------------------------------------ numpy references with TF semantics


def tf_same(size: int, k: int, s: int) -> tuple[int, int]:
    """TF's documented SAME rule: output ceil(size / s); the odd padding pixel goes after."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pad_nhwc(x: F32, k: tuple[int, int], s: tuple[int, int], padding: str, value: float = 0.0) -> F32:
    if padding == "VALID":
        return x
    (t, b), (left, r) = tf_same(x.shape[1], k[0], s[0]), tf_same(x.shape[2], k[1], s[1])
    return np.pad(x, [(0, 0), (t, b), (left, r), (0, 0)], constant_values=value)


def windows(x: F32, k: tuple[int, int], s: tuple[int, int]) -> list[tuple[int, int, F32]]:
    oh, ow = (x.shape[1] - k[0]) // s[0] + 1, (x.shape[2] - k[1]) // s[1] + 1
    return [
        (i, j, x[:, i : i + s[0] * oh : s[0], j : j + s[1] * ow : s[1], :])
        for i in range(k[0])
        for j in range(k[1])
    ]


def conv_ref(x: F32, w: F32, s: int, padding: str) -> F32:
    kh, kw = w.shape[:2]
    xp = pad_nhwc(x, (kh, kw), (s, s), padding)
    return np.asarray(sum(patch @ w[i, j] for i, j, patch in windows(xp, (kh, kw), (s, s))), np.float32)


def depthwise_ref(x: F32, w: F32, s: int, padding: str) -> F32:
    kh, kw, c, m = w.shape
    xp = pad_nhwc(x, (kh, kw), (s, s), padding)
    out = sum(patch[..., :, None] * w[i, j] for i, j, patch in windows(xp, (kh, kw), (s, s)))
    return np.asarray(out).reshape(*np.shape(out)[:3], c * m)


def maxpool_ref(x: F32, k: int, s: int) -> F32:
    xp = pad_nhwc(x, (k, k), (s, s), "SAME", -np.inf)
    return np.max([p for _, _, p in windows(xp, (k, k), (s, s))], axis=0)


def avgpool_ref(x: F32, k: int, s: int) -> F32:
    """TF divides by the number of real pixels in the window (padding is not counted)."""
    xp = pad_nhwc(x, (k, k), (s, s), "SAME")
    ones = pad_nhwc(np.ones_like(x), (k, k), (s, s), "SAME")
    total = sum(p for _, _, p in windows(xp, (k, k), (s, s)))
    count = sum(p for _, _, p in windows(ones, (k, k), (s, s)))
    return np.asarray(total / count)


def softmax(x: F32) -> F32:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def dequant(b: GraphBuilder, name: str, value: F32) -> F32:
    """What the stored (quantised) weight decodes to: the reference must use the same values."""
    spec = next(w for w in b.weights if w["name"] == name)
    q = spec.get("quantization")
    if q is None:
        return value
    if q["dtype"] == "float16":
        return value.astype(np.float16).astype(np.float32)
    levels = np.round((value - q["min"]) / q["scale"])
    return (levels * q["scale"] + q["min"]).astype(np.float32)


# ---------------------------------------------------------------------------------------- converter


def test_same_padding_is_tf_rule() -> None:
    assert tfjs.same_pads(224, 3, 2) == (0, 1)  # even input, stride 2: the extra pixel goes after
    assert tfjs.same_pads(7, 3, 2) == (1, 1)
    assert tfjs.same_pads(5, 2, 1) == (0, 1)
    assert tfjs.same_pads(5, 1, 1) == (0, 0)
    assert tfjs.same_pads(9, 3, 1, dilation=2) == (2, 2)


def test_mobilenet_style_graph_matches_numpy() -> None:
    """Conv (SAME, stride 2, non-square kernel) + folded batch norm + ReLU6, depthwise, fused conv,
    pooling, concat, pad, reshape, mean, fused matmul, softmax; quantised and float16 weights."""
    rng = np.random.default_rng(0)
    k1 = rng.normal(size=(3, 2, 3, 4)).astype(np.float32)
    s1, b1 = rng.uniform(0.5, 1.5, 4).astype(np.float32), rng.normal(size=4).astype(np.float32)
    dw = rng.normal(size=(2, 2, 4, 2)).astype(np.float32)
    dw_scale = rng.uniform(0.5, 1.5, 8).astype(np.float32)
    k2, b2 = rng.normal(size=(1, 1, 8, 6)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    wd, bd = rng.normal(size=(12, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    wr = rng.normal(size=(3 * 5 * 12, 3)).astype(np.float32) * 0.1

    g = GraphBuilder()
    x = g.placeholder("x", [-1, 7, 10, 3])
    conv_attrs = {"data_format": "NHWC", "dilations": [1, 1, 1, 1]}
    c1 = g.op("c1", "Conv2D", [x, g.const("k1", k1)], strides=[1, 2, 2, 1], padding="SAME", **conv_attrs)
    m1 = g.op("m1", "Mul", [c1, g.const("s1", s1)])
    a1 = g.op("a1", "AddV2", [m1, g.const("b1", b1)])
    r1 = g.op("r1", "Relu", [a1])
    r1 = g.op("r1min", "Minimum", [r1, g.const("six", np.float32(6.0))])
    r1 = g.op("r1max", "Maximum", [r1, g.const("zero", np.float32(0.0))])
    d = g.op("dw", "DepthwiseConv2dNative", [r1, g.const("dwk", dw, "uint8")], strides=[1, 1, 1, 1],
             padding="SAME", **conv_attrs)  # fmt: skip
    d = g.op("dwmul", "Mul", [g.const("dws", dw_scale), d])  # constant first: still folded
    f = g.op("f", "_FusedConv2D", [d, g.const("k2", k2, "float16"), g.const("b2", b2)], strides=[1, 1, 1, 1],
             padding="VALID", fused_ops=["BiasAdd", "Relu"], num_args=1, **conv_attrs)  # fmt: skip
    pool_attrs = {"ksize": [1, 3, 3, 1], "strides": [1, 2, 2, 1], "padding": "SAME", "data_format": "NHWC"}
    mp = g.op("mp", "MaxPool", [f], **pool_attrs)
    ap = g.op("ap", "AvgPool", [f], **pool_attrs)
    cat = g.op("cat", "ConcatV2", [mp, ap, g.const("axis", np.int32(-1))])
    pad = g.op("pad", "Pad", [cat, g.const("paddings", np.array([[0, 0], [1, 0], [0, 2], [0, 0]], np.int32))])
    mean = g.op("mean", "Mean", [pad, g.const("hw", np.array([1, 2], np.int32))], keep_dims=False)
    dense = g.op("dense", "_FusedMatMul", [mean, g.const("wd", wd, "uint16"), g.const("bd", bd)],
                 fused_ops=["BiasAdd"], num_args=1, transpose_a=False, transpose_b=False)  # fmt: skip
    g.op("probs", "Softmax", [dense])
    flat = g.op("flat", "Reshape", [pad, g.const("flat_shape", np.array([-1, 180], np.int32))])
    g.op("side", "Sigmoid", [g.op("side_mm", "MatMul", [flat, g.const("wr", wr)])])

    files = g.files()
    model = tfjs.convert_files(
        files, "model/model.json", outputs={"probs": "probs", "side": "side", "pad": "padded"}
    )
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Mul") == 0 and ops.count("Add") == 0  # scale/shift folded into the convolutions
    assert ops.count("Clip") == 1 and "Min" not in ops and "Max" not in ops  # Relu->Min->Max is one Clip

    xv = rng.normal(size=(2, 7, 10, 3)).astype(np.float32) * 2
    got = run(model, {"x": xv})

    dwq, k2q, wdq = dequant(g, "dwk", dw), dequant(g, "k2", k2), dequant(g, "wd", wd)
    assert not np.array_equal(dwq, dw) and not np.array_equal(k2q, k2)  # the weights really were quantised
    ref = np.clip(conv_ref(xv, k1, 2, "SAME") * s1 + b1, 0, 6)
    assert ref.shape == (2, 4, 5, 4)
    ref = depthwise_ref(ref, dwq, 1, "SAME") * dw_scale
    ref = np.maximum(conv_ref(ref, k2q, 1, "VALID") + b2, 0)
    ref = np.concatenate([maxpool_ref(ref, 3, 2), avgpool_ref(ref, 3, 2)], axis=-1)
    ref_pad = np.pad(ref, [(0, 0), (1, 0), (0, 2), (0, 0)])
    assert ref_pad.shape == (2, 3, 5, 12)
    probs = softmax(ref_pad.mean(axis=(1, 2)) @ wdq + bd)
    side = 1 / (1 + np.exp(-(ref_pad.reshape(2, -1) @ wr)))

    np.testing.assert_allclose(got["padded"], ref_pad, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["probs"], probs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["side"], side, rtol=1e-4, atol=1e-5)


def test_batch_norm_prelu_and_friends_match_numpy() -> None:
    rng = np.random.default_rng(1)
    scale, offset = rng.uniform(0.5, 2, 3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    mean, var = rng.normal(size=3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)
    alpha = rng.uniform(0.05, 0.3, 3).astype(np.float32)
    k = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)
    g = GraphBuilder()
    x = g.placeholder("x", [-1, 6, 6, 3])
    bn = g.op("bn", "FusedBatchNormV3", [x, *(g.const(n, v) for n, v in
              (("scale", scale), ("offset", offset), ("mean", mean), ("var", var)))],
              epsilon=0.001, data_format="NHWC")  # fmt: skip
    pr = g.op("prelu", "Prelu", [bn, g.const("alpha", alpha)])
    lr = g.op("leaky", "LeakyRelu", [pr], alpha=0.1)
    c = g.op("conv", "_FusedConv2D", [lr, g.const("k", k), g.const("b", np.zeros(2, np.float32))],
             strides=[1, 1, 1, 1], padding="SAME", dilations=[1, 2, 2, 1], data_format="NHWC",
             fused_ops=["BiasAdd", "Relu6"], num_args=1)  # fmt: skip
    sub = g.op("sub", "Sub", [c, g.const("three", np.float32(3.0))])
    m = g.op("m", "Mean", [sub, g.const("axes", np.array([1, 2], np.int32))], keep_dims=True)
    g.op("sq", "Squeeze", [m], squeeze_dims=[1, 2])
    model = tfjs.convert_files(g.files(), "model/model.json", outputs={"sq": "y", "leaky": "act"})

    xv = rng.normal(size=(3, 6, 6, 3)).astype(np.float32)
    got = run(model, {"x": xv})
    ref = (xv - mean) / np.sqrt(var + 0.001) * scale + offset
    ref = np.where(ref > 0, ref, ref * alpha)
    ref = np.where(ref > 0, ref, ref * 0.1)
    np.testing.assert_allclose(got["act"], ref, rtol=1e-5, atol=1e-5)
    # dilation 2, SAME: an effective 5x5 kernel; reference by dilating the kernel with zeros.
    kd = np.zeros((5, 5, 3, 2), np.float32)
    kd[::2, ::2] = k
    conv = np.clip(conv_ref(ref, kd, 1, "SAME"), 0, 6) - 3
    np.testing.assert_allclose(got["y"], conv.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)


def test_unsupported_op_is_reported() -> None:
    g = GraphBuilder()
    x = g.placeholder("x", [-1, 4])
    g.op("y", "Cumsum", [x])
    with pytest.raises(tfjs.TFJSConversionError, match="Cumsum"):
        tfjs.convert_files(g.files(), "model/model.json", outputs={"y": "y"})


def test_prune_cuts_a_backbone_out_of_an_unsupported_graph() -> None:
    """A detector's post-processing (here an unsupported op) does not stop its backbone converting."""
    g = GraphBuilder()
    x = g.placeholder("x", [-1, 4])
    g.op("features", "Relu", [x])
    g.op("decode", "Cumsum", ["features"])
    with pytest.raises(tfjs.TFJSConversionError, match="Cumsum"):
        tfjs.convert_files(g.files(), "model/model.json", outputs={"features": "f"})
    model = tfjs.convert_files(g.files(), "model/model.json", outputs={"features": "f"}, prune=True)
    feed = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    np.testing.assert_array_equal(run(model, {"x": feed})["f"], np.maximum(feed, 0))
    with pytest.raises(tfjs.TFJSConversionError, match="nope"):
        tfjs.convert_files(g.files(), "model/model.json", outputs={"nope": "f"}, prune=True)


def test_conversion_is_deterministic() -> None:
    g = GraphBuilder()
    x = g.placeholder("x", [-1, 4, 4, 2])
    g.op("c", "Conv2D", [x, g.const("k", np.ones((3, 3, 2, 2), np.float32))], strides=[1, 1, 1, 1],
         padding="SAME", data_format="NHWC", dilations=[1, 1, 1, 1])  # fmt: skip
    files = g.files()
    a = tfjs.convert_files(files, "model/model.json", outputs={"c": "y"}).SerializeToString(
        deterministic=True
    )
    b = tfjs.convert_files(files, "model/model.json", outputs={"c": "y"}).SerializeToString(
        deterministic=True
    )
    assert a == b


def test_flop_count_of_synthetic_model() -> None:
    g = GraphBuilder()
    x = g.placeholder("x", [-1, 8, 8, 3])
    c = g.op("c", "Conv2D", [x, g.const("k", np.ones((3, 3, 3, 4), np.float32))], strides=[1, 2, 2, 1],
             padding="SAME", data_format="NHWC", dilations=[1, 1, 1, 1])  # fmt: skip
    d = g.op("d", "DepthwiseConv2dNative", [c, g.const("dk", np.ones((3, 3, 4, 1), np.float32))],
             strides=[1, 1, 1, 1], padding="SAME", data_format="NHWC", dilations=[1, 1, 1, 1])  # fmt: skip
    m = g.op("m", "Mean", [d, g.const("hw", np.array([1, 2], np.int32))], keep_dims=False)
    g.op("y", "MatMul", [m, g.const("w", np.ones((4, 10), np.float32))])
    model = tfjs.convert_files(g.files(), "model/model.json", outputs={"y": "y"})
    count = count_flops(model, (2, 8, 8, 3))
    conv = 2 * 4 * 4 * 4 * (3 * 3 * 3)
    depthwise = 2 * 4 * 4 * 4 * (3 * 3)
    dense = 2 * 4 * 10
    assert count.by_op == {"Conv": conv + depthwise, "Gemm": dense}
    assert count.macs == conv + depthwise + dense and count.flops == 2 * count.macs
    assert parameter_count(model) == 3 * 3 * 3 * 4 + 3 * 3 * 4 + 4 * 10


def test_flop_count_reads_shapes_inference_cannot_tell() -> None:
    """A Resize whose size goes through float maths leaves ONNX shape inference blind: one onnxruntime
    run on zeros supplies the shapes."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["sf", "half"], ["sh"]),
        helper.make_node("Cast", ["sh"], ["si"], to=TensorProto.INT64),
        helper.make_node("Resize", ["x", "", "", "si"], ["r"], mode="nearest"),
        helper.make_node("Conv", ["r", "w"], ["y"], pads=[1, 1, 1, 1]),
    ]
    init = [
        numpy_helper.from_array(np.array([1, 1, 0.5, 0.5], np.float32), "half"),
        numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w"),
    ]
    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert count_flops(model, (1, 3, 8, 8)).macs == 4 * 4 * 4 * 27
    assert count_flops(model, {"x": (2, 3, 16, 16)}).macs == 2 * 8 * 8 * 4 * 27
    with pytest.raises(ValueError, match="symbolic"):
        count_flops(model)


# ------------------------------------------------------------------------------ the real faceres-deep


@pytest.fixture(scope="module")
def faceres_model() -> bytes:
    """The converted model from the shared model store (fetched and converted at most once)."""
    from ageguard.models import store

    return store.ensure("faceres_deep").read_bytes()


@pytest.fixture(scope="module")
def faceres() -> Any:
    from ageguard.vision.age.faceres import FaceResAge

    return FaceResAge.from_store()


def astronaut_face() -> npt.NDArray[np.uint8]:
    """The reference crop: skimage's astronaut, her face, bilinear (half-pixel centres) to 224."""
    from PIL import Image
    from skimage import data

    crop = data.astronaut()[83:171, 179:267]
    return np.asarray(Image.fromarray(crop).resize((224, 224), Image.Resampling.BILINEAR))


def test_faceres_graph_and_flops(faceres_model: bytes) -> None:
    from ageguard.models import registry

    model = onnx.load_from_string(faceres_model)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["age_probs", "gender", "descriptor"]
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {"Transpose", "Conv", "Clip", "GlobalAveragePool", "Flatten", "Gemm", "Relu", "Sigmoid",
                   "Softmax", "Identity"}  # fmt: skip
    assert sum(n.op_type == "Transpose" for n in model.graph.node) == 1  # NHWC -> NCHW once, at the input
    count = count_flops(model, (1, 224, 224, 3))
    # MobileNet v1 (width 1.0, 224 px) is 569 M mult-adds with its 1000-class head; here 1024->256->100+1.
    assert count.by_op["Conv"] == 567_716_352
    assert count.by_op["Gemm"] == 1024 * 256 + 256 * 100 + 256
    assert parameter_count(model) == 3_484_443
    pin = registry.get_asset("faceres_deep").sha256
    if pin is not None:
        import hashlib

        assert hashlib.sha256(faceres_model).hexdigest() == pin


def test_faceres_astronaut_reference(faceres: Any) -> None:
    face = astronaut_face()
    out = faceres.predict(face[None])
    assert out.mean.shape == (1,) and out.mean.dtype == np.float32
    assert out.std is not None
    # Reference figures measured independently for this crop and preprocessing.
    assert abs(float(out.mean[0]) - 34.1) <= 0.3
    assert abs(float(out.std[0]) - 7.0) <= 0.3
    full = faceres.run(face[None])
    assert full.age_probs.shape == (1, 100) and abs(float(full.age_probs.sum()) - 1.0) < 1e-4
    assert full.gender.shape == (1,) and full.gender[0] < 0.5  # the astronaut is a woman
    assert full.descriptor.shape == (1, 1024)


def test_faceres_batches_agree_with_singles(faceres: Any) -> None:
    face = astronaut_face()
    batch = np.stack([face, face[:, ::-1], np.full_like(face, 128)])
    together = faceres.predict_distribution(batch)
    assert together.shape == (3, 100)
    for i in range(3):
        np.testing.assert_allclose(together[i], faceres.predict_distribution(batch[i : i + 1])[0], atol=1e-5)
    out = faceres.predict(batch)
    from ageguard.vision.age.faceres import distribution_stats

    mean, std = distribution_stats(together)
    np.testing.assert_allclose(out.mean, mean, rtol=1e-5)
    assert out.std is not None
    np.testing.assert_allclose(out.std, std, rtol=1e-5)
    assert faceres.predict_distribution(batch[:0]).shape == (0, 100)
    with pytest.raises(ValueError):
        faceres.predict(batch[:, :100, :100])
