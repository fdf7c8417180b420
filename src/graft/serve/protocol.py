"""The Open Inference Protocol (KServe V2, REST) as graft speaks it: parsing infer requests, encoding responses.

A request carries one BYTES input tensor (the modality's `wire_name`: `text` or `image`), shape `[N]` or `[N, 1]`,
either as JSON `data` (strings; images base64-encoded) or with the binary tensor extension that Triton's clients
use (`Inference-Header-Content-Length`, each element a 4-byte little-endian length and its bytes). The response has
`logits` (FP32 `[N, K]`), `probabilities` (FP32 `[N, K]`) and `label` (BYTES `[N]`), as JSON or, when asked for
(`binary_data_output`, or an output's `binary_data`), as binary tensors after the JSON header.

Anything wrong with a request is a `ProtocolError` with its HTTP status (400, 404, 413) and a one-line message: the
server answers `{"error": message}` and keeps serving.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from graft.core.errors import GraftError
from graft.modalities.base import TooLarge
from graft.serve.predict import softmax

HEADER = "Inference-Header-Content-Length"
OUTPUTS = ("logits", "probabilities", "label")


class ProtocolError(Exception):
    """A request the server refuses: its HTTP status and what is wrong, in one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Request:
    """A parsed infer request: the decoded items, which outputs to send, and how."""

    items: list
    id: str | None = None
    outputs: dict[str, bool] = field(default_factory=dict)  # name -> binary


def _json(raw: bytes, what: str) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(400, f"{what} is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise ProtocolError(400, f"{what} must be a JSON object")
    return value


def _bytes_elements(raw: bytes, count: int, name: str) -> list[bytes]:
    """Unpack a binary BYTES tensor: `count` elements, each a uint32 length (little-endian) then its bytes."""
    out, at = [], 0
    for _ in range(count):
        if at + 4 > len(raw):
            raise ProtocolError(400, f"input {name!r}: binary data ends before its {count} elements")
        (size,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + size > len(raw):
            raise ProtocolError(400, f"input {name!r}: binary data ends inside an element")
        out.append(raw[at:at + size])
        at += size
    if at != len(raw):
        raise ProtocolError(400, f"input {name!r}: {len(raw) - at} bytes of binary data beyond its {count} elements")
    return out


def pack_bytes(blobs: list[bytes]) -> bytes:
    """A binary BYTES tensor: each element a uint32 length (little-endian), then its bytes."""
    return b"".join(struct.pack("<I", len(b)) + b for b in blobs)


def _flatten(data: Any, name: str) -> list:
    """JSON data of shape [N] or [N, 1]: at most two levels of lists (deeper nesting is refused, not recursed)."""
    if not isinstance(data, list):
        return [data]
    out = []
    for d in data:
        if isinstance(d, list):
            if any(isinstance(x, list) for x in d):
                raise ProtocolError(400, f"input {name!r}: data nested deeper than the shape [N] or [N, 1] allows")
            out.extend(d)
        else:
            out.append(d)
    return out


def _parameters(obj: dict, where: str) -> dict:
    """An object's `parameters`: absent or a JSON object, else a 400."""
    params = obj.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ProtocolError(400, f"{where} parameters must be a JSON object, not {type(params).__name__}")
    return params


def _json_elements(data: Any, name: str, binary_items: bool) -> list[bytes]:
    """JSON BYTES data: strings (flat or [N, 1]); images come base64-encoded."""
    flat = _flatten(data, name)
    if not all(isinstance(x, str) for x in flat):
        raise ProtocolError(400, f"input {name!r}: BYTES data must be strings")
    if not binary_items:
        return [x.encode("utf-8", "surrogatepass") for x in flat]
    try:
        return [base64.b64decode(x, validate=True) for x in flat]
    except (binascii.Error, ValueError):
        raise ProtocolError(400, f"input {name!r}: image data in JSON must be base64 (or use binary tensors)") from None


def parse_infer(body: bytes, header_length: str | None, modality, limits) -> Request:
    """Decode and check an infer request for `modality` against the `serve` limits."""
    if header_length is not None:
        try:
            split = int(header_length)
        except ValueError:
            raise ProtocolError(400, f"{HEADER} is not an integer: {header_length!r}") from None
        if not 0 < split <= len(body):
            raise ProtocolError(400, f"{HEADER} {split} is outside the body ({len(body)} bytes)")
        head, rest = _json(body[:split], "the request header"), body[split:]
    else:
        head, rest = _json(body, "the request body"), b""
    inputs = head.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError(400, "the request has no inputs (a list of tensors)")
    if len(inputs) != 1:
        names = [i.get("name") for i in inputs if isinstance(i, dict)]
        raise ProtocolError(400, f"expected one input tensor {modality.wire_name!r}, got {len(inputs)}: {names}")
    tensor = inputs[0]
    if not isinstance(tensor, dict):
        raise ProtocolError(400, "an input tensor must be a JSON object")
    name, dtype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if name != modality.wire_name:
        raise ProtocolError(400, f"unknown input {name!r}: this model takes {modality.wire_name!r}")
    if dtype != "BYTES":
        raise ProtocolError(400, f"input {name!r}: datatype {dtype!r}, expected BYTES")
    if (not isinstance(shape, list) or not shape or len(shape) > 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
            or (len(shape) == 2 and shape[1] != 1)):
        raise ProtocolError(400, f"input {name!r}: shape {shape!r}, expected [N] or [N, 1]")
    count = shape[0]
    if count == 0:
        raise ProtocolError(400, f"input {name!r}: no elements")
    if count > limits.max_inputs:
        raise ProtocolError(413, f"input {name!r}: {count} elements, over serve.max_inputs ({limits.max_inputs})")
    size = _parameters(tensor, f"input {name!r}").get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != len(rest):
            raise ProtocolError(400, f"input {name!r}: binary_data_size {size!r} but {len(rest)} bytes follow")
        blobs = _bytes_elements(rest, count, name)
    else:
        if rest:
            raise ProtocolError(400, f"{len(rest)} bytes after the header, but no input has binary_data_size")
        if "data" not in tensor:
            raise ProtocolError(400, f"input {name!r}: no data")
        blobs = _json_elements(tensor["data"], name, binary_items=modality.wire_base64)
    if len(blobs) != count:
        raise ProtocolError(400, f"input {name!r}: shape {shape} says {count} elements, the data has {len(blobs)}")
    items = []
    for i, blob in enumerate(blobs):
        try:
            items.append(modality.wire_item(blob, limits))
        except TooLarge as exc:
            raise ProtocolError(413, f"input {name!r} element {i}: {exc}") from None
        except GraftError as exc:
            raise ProtocolError(400, f"input {name!r} element {i}: {exc}") from None
    return Request(items, head.get("id") if isinstance(head.get("id"), str) else None, _outputs(head))


def _outputs(head: dict) -> dict[str, bool]:
    """Which outputs to send, and which as binary tensors (the request's default, or each output's own)."""
    default = bool(_parameters(head, "the request's").get("binary_data_output", False))
    asked = head.get("outputs")
    if asked is None:
        return {name: default for name in OUTPUTS}
    if not isinstance(asked, list) or not all(isinstance(o, dict) for o in asked):
        raise ProtocolError(400, "outputs must be a list of objects with a name")
    out = {}
    for o in asked:
        if o.get("name") not in OUTPUTS:
            raise ProtocolError(400, f"unknown output {o.get('name')!r} (have {', '.join(OUTPUTS)})")
        out[o["name"]] = bool(_parameters(o, f"output {o['name']!r}").get("binary_data", default))
    return out


def encode_infer(request: Request, logits: np.ndarray, labels: list[str], model: str, version: str,
                 parameters: dict) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers (the binary extension's header length, when any output is binary)."""
    logits = logits.astype(np.float32)
    values = {"logits": logits, "probabilities": softmax(logits).astype(np.float32),
              "label": [labels[int(i)] for i in logits.argmax(1)]}
    outputs, tail = [], []
    for name, binary in request.outputs.items():
        value = values[name]
        is_bytes = name == "label"
        spec = {"name": name, "datatype": "BYTES" if is_bytes else "FP32",
                "shape": [len(value)] if is_bytes else list(value.shape)}
        if binary:
            raw = pack_bytes([s.encode() for s in value]) if is_bytes else value.astype("<f4").tobytes()
            spec["parameters"] = {"binary_data_size": len(raw)}
            tail.append(raw)
        else:
            spec["data"] = list(value) if is_bytes else value.ravel().tolist()
        outputs.append(spec)
    head = {"model_name": model, "model_version": version, "parameters": parameters, "outputs": outputs}
    if request.id is not None:
        head["id"] = request.id
    body = orjson.dumps(head)
    if not tail:
        return body, {}
    return body + b"".join(tail), {HEADER: str(len(body))}
