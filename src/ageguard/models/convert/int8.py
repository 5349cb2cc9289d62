"""int8 variants of the float32 networks: onnxruntime static quantisation from committed activation ranges.

A static int8 model needs, for every activation it quantises, the range of values that activation takes
on real inputs. Those ranges are measured once, on faces the served pipeline cropped (``ageguard models
calibrate-int8``), and committed beside this module as a JSON file of numbers; installing the variant then
needs no images: the store converts the float32 network as usual and quantises it with those ranges, which
is deterministic, so the int8 file is pinned by SHA-256 like every other asset.

The recipe was chosen by measurement (docs/performance.md, "int8 age network"): per-channel weights
(per-tensor int8 lost 9 years of MAE on faceres-deep), QDQ format, unsigned 8-bit activations and signed
7-bit weights (full 8-bit weights saturate onnxruntime's int16 pair sums on x86 CPUs without VNNI, so the
answers would depend on the CPU), min/max ranges, and only the convolutional trunk in int8, but for its first
two convolutions (they see the raw pixels); those, the pooled head (fully connected layers) and the softmax
stay float32, which keeps the probabilities the st_dev is read from unquantised. Only faceres-deep is
quantised: it is the most expensive network and gains most; face-api gains little, and RetinaFace gains
nothing in onnxruntime's int8 kernels.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

FACERES_RANGES = Path(__file__).with_name("faceres_deep_int8.ranges.json")

# A batch of network inputs by input name, as onnxruntime's ``session.run`` takes them.
InputBatch = Mapping[str, npt.NDArray[np.float32]]
# The operators quantised; every other node (pooling, the head, the outputs) runs in float32.
TRUNK_OPS = frozenset({"Conv", "Clip"})
# The first convolutions (the stem and the first depthwise one) stay float32 too: they see the raw
# pixels, whose 7-bit-weight products lose most (measured: median age change 0.53 -> 0.26 y).
FLOAT_STEM_CONVS = 2


def _options() -> dict[str, object]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    return {
        "quant_format": QuantFormat.QDQ,
        "per_channel": True,
        "activation_type": QuantType.QUInt8,
        "weight_type": QuantType.QInt8,
        "calibrate_method": CalibrationMethod.MinMax,
        # 7-bit weights: x86 CPUs without VNNI (AVX2 only) multiply uint8 by int8 in pairs summed into a
        # saturating int16 (vpmaddubsw), which full 8-bit weights overflow (the served age moved by 0.87 y
        # in median there, against 0.14 y with VNNI); with 7 bits no sum can saturate, so every CPU
        # computes the same integers and gives the same answers.
        "reduce_range": True,
    }


def quantize(fp32: bytes, ranges: Path) -> bytes:
    """The int8 model of ``fp32`` with the activation ranges recorded in ``ranges``."""
    import onnx
    from onnxruntime.quantization import quantize_static

    if not ranges.is_file():
        raise FileNotFoundError(f"no activation ranges at {ranges}: run `ageguard models calibrate-int8`")
    nodes = list(onnx.load_from_string(fp32).graph.node)
    stem = [n.name for n in nodes if n.op_type == "Conv"][:FLOAT_STEM_CONVS]
    float_nodes = [n.name for n in nodes if n.op_type not in TRUNK_OPS] + stem
    with tempfile.TemporaryDirectory(prefix="ageguard-int8-") as tmp:
        source, out, cache = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx"), Path(tmp, "ranges.json")
        source.write_bytes(fp32)
        # quantize_static may rewrite its cache file; it only ever sees a copy, never the package's.
        shutil.copyfile(ranges, cache)
        with _quiet_quantiser():
            quantize_static(str(source), str(out), calibration_data_reader=None, calibration_cache_path=cache,
                            nodes_to_exclude=float_nodes, **_options())  # fmt: skip
        return out.read_bytes()


@contextlib.contextmanager
def _quiet_quantiser() -> Iterator[None]:
    """Drop the quantiser's advice to pre-process the model, which it logs on the root logger at every
    install (the pinned recipe is deliberately without that step)."""

    def keep(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def record_ranges(fp32: bytes, batches: Iterable[InputBatch], out: Path) -> int:
    """Run ``fp32`` on ``batches``, write every activation's min/max to ``out``; returns the batch count."""
    from onnxruntime.quantization import CalibrationDataReader, save_tensors_data
    from onnxruntime.quantization.calibrate import create_calibrator

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.count = 0
            self._it: Iterator[InputBatch] = iter(batches)

        def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
            batch = next(self._it, None)
            if batch is None:
                return None
            self.count += 1
            return dict(batch)

    with tempfile.TemporaryDirectory(prefix="ageguard-int8-") as tmp:
        source = Path(tmp, "fp32.onnx")
        source.write_bytes(fp32)
        calibrator = create_calibrator(
            source, augmented_model_path=str(Path(tmp, "augmented.onnx")),
            calibrate_method=_options()["calibrate_method"],
        )  # fmt: skip
        reader = Reader()
        calibrator.collect_data(reader)
        if reader.count == 0:
            raise ValueError("no calibration inputs")
        raw = Path(tmp, "ranges.json")
        save_tensors_data(calibrator.compute_data(), raw)
        # Sorted keys: the same faces give the same bytes (onnxruntime writes tensors in set order).
        out.write_text(json.dumps(json.loads(raw.read_text()), sort_keys=True, indent=1) + "\n")
        return reader.count


def convert_faceres_int8(files: dict[str, bytes]) -> bytes:
    """Registry converter of ``faceres_deep_int8``: the float32 conversion, then quantised."""
    from ageguard.models.convert.tfjs import convert_faceres

    return quantize(convert_faceres(files), FACERES_RANGES)
