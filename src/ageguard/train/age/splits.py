"""Which part of each source a face belongs to: train, val (model choice) or test (reported only).

All-Age-Faces is split by person id, the id-less sources (UTKFace chips, AFAD) by a hash of the file name;
one tenth of every source is the unseen test part, one tenth the validation part. Evaluation sets (the
dev sets of ../shared/datasets) are test only: never trained on, never used to choose.
"""

from __future__ import annotations

import hashlib

TEST_BUCKET, VAL_BUCKET = 0, 1  # hash buckets (of 10) held out per source
EVALUATION_ONLY = ("utkface-dev",)


def split_of(source: str, file: str, identity: str = "") -> str:
    """'train', 'val' or 'test', stable across runs and machines."""
    if source in EVALUATION_ONLY:
        return "test"
    bucket = int(hashlib.sha256(f"{source}/{identity or file}".encode()).hexdigest()[:8], 16) % 10
    return {TEST_BUCKET: "test", VAL_BUCKET: "val"}.get(bucket, "train")
