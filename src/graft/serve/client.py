"""A small Open Inference Protocol (KServe V2 REST) client over one keep-alive HTTP connection (stdlib only).

It is how graft itself calls `graft serve` (the gate's infra-validation, the serving benchmark): inputs go as one
BYTES tensor with the binary tensor extension (each element a 4-byte little-endian length and its bytes, so texts
and encoded images travel alike), `logits` come back as a binary FP32 tensor (bit-exact, no decimal round trip)
and `label` as JSON. Any HTTP client that speaks V2 works as well (tritonclient, curl; docs/serving.md).
"""

from __future__ import annotations

import http.client
import json
import socket

import numpy as np

from graft.serve.protocol import HEADER, pack_bytes


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on at `host` now (another process may take it before a server binds it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class CallError(Exception):
    """A V2 call that did not return 200: its status and the server's `{"error"}` message (or why it failed)."""

    def __init__(self, status: int | None, message: str):
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status, self.message = status, message


def as_bytes(item) -> bytes:
    """One input as a BYTES element: texts UTF-8 encoded, encoded image files as they are."""
    return item.encode("utf-8") if isinstance(item, str) else bytes(item)


def infer_body(wire_name: str, items: list) -> tuple[bytes, dict[str, str]]:
    """An infer request for `items` in the binary tensor extension: the body and its headers."""
    blobs = [as_bytes(x) for x in items]
    tail = pack_bytes(blobs)
    head = json.dumps({"inputs": [{"name": wire_name, "datatype": "BYTES", "shape": [len(blobs)],
                                   "parameters": {"binary_data_size": len(tail)}}],
                       "outputs": [{"name": "logits", "parameters": {"binary_data": True}},
                                   {"name": "label", "parameters": {"binary_data": False}}]}).encode()
    return head + tail, {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}


def parse_response(body: bytes, header_length: str | None) -> dict:
    """{"logits": float32 [N, K], "label": [...], "model_version", "parameters"} of an infer response."""
    split = int(header_length) if header_length else len(body)
    head, at, out = json.loads(body[:split]), split, {}
    for tensor in head["outputs"]:
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is None:
            out[tensor["name"]] = tensor["data"]
            continue
        raw, at = body[at:at + size], at + size
        out[tensor["name"]] = np.frombuffer(raw, "<f4").reshape(tensor["shape"])
    return {**out, "model_version": head.get("model_version"), "parameters": head.get("parameters") or {}}


class Client:
    """Calls one `graft serve` (or any V2 server) at http://HOST:PORT on one persistent connection."""

    def __init__(self, host: str, port: int, timeout: float = 30.0):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def _call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
              ) -> tuple[bytes, http.client.HTTPResponse]:
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()  # the next call reconnects
            raise CallError(None, f"{method} {path}: {exc or type(exc).__name__}") from None
        if resp.status != 200:
            try:
                message = json.loads(data)["error"]
            except (ValueError, KeyError, TypeError):
                message = data[:200].decode("utf-8", "replace")
            raise CallError(resp.status, message)
        return data, resp

    def get(self, path: str) -> dict:
        """GET a V2 JSON endpoint (`/v2`, `/v2/models/NAME`, ...)."""
        data, _ = self._call("GET", path)
        return json.loads(data) if data else {}

    def ready(self) -> bool:
        """Whether /v2/health/ready answers 200 (False when it does not answer at all)."""
        try:
            self._call("GET", "/v2/health/ready")
        except CallError:
            return False
        return True

    def infer(self, model: str, wire_name: str, items: list) -> dict:
        """Logits and labels of `items` from POST /v2/models/MODEL/infer (see `parse_response`)."""
        body, headers = infer_body(wire_name, items)
        data, resp = self._call("POST", f"/v2/models/{model}/infer", body, headers)
        return parse_response(data, resp.getheader(HEADER))
