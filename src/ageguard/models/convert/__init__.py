"""Converters from registry archives to ONNX bytes: ``(extracted members) -> onnx bytes``, deterministic."""
