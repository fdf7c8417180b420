"""Serving: the ONNX package (`export`, parity on the test split) and torch-free prediction from it (`predict`)."""
