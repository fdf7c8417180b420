"""graft serve's pieces that need no model: the metrics middleware on a crash, the client's V2 encoding."""

import asyncio
import json
import struct

import numpy as np

from graft.serve import client, protocol
from graft.serve.routes import Counted
from graft.serve.server import Metrics


def _call(app, path: str = "/v2/models/graft/infer") -> list[dict]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "POST", "path": path, "headers": []}, receive, send))
    return sent


def test_a_crash_behind_the_middleware_is_a_json_500_and_counted():
    async def crashing(scope, receive, send):
        scope["graft_endpoint"] = "infer"
        raise RuntimeError("the model fell over")

    metrics = Metrics()
    start, body = _call(Counted(crashing, metrics))
    assert start["status"] == 500
    assert json.loads(body["body"]) == {"error": "internal error: RuntimeError: the model fell over"}
    assert metrics.registry.get_sample_value("graft_requests_total", {"endpoint": "infer", "status": "500"}) == 1


def test_the_middleware_counts_the_status_the_app_sent():
    async def fine(scope, receive, send):
        await send({"type": "http.response.start", "status": 413, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    metrics = Metrics()
    assert _call(Counted(fine, metrics))[0]["status"] == 413
    assert metrics.registry.get_sample_value("graft_requests_total", {"endpoint": "other", "status": "413"}) == 1
    assert metrics.registry.get_sample_value("graft_request_seconds_count", {"endpoint": "other"}) == 1


class _Limits:
    max_inputs, max_text_bytes = 8, 100


class _Text:
    wire_name, wire_base64 = "text", False

    @staticmethod
    def wire_item(blob: bytes, limits):
        return blob.decode()


def test_the_client_request_is_what_the_server_parses_and_its_response_parses_back():
    body, headers = client.infer_body("text", ["héllo", "wörld"])
    request = protocol.parse_infer(body, headers[protocol.HEADER], _Text, _Limits)
    assert request.items == ["héllo", "wörld"] and request.outputs == {"logits": True, "label": False}
    logits = np.array([[0.25, -1.5], [0.125, 3.0]], dtype=np.float32)
    raw, extra = protocol.encode_infer(request, logits, ["a", "b"], "graft", "7", {"model_version": "7"})
    answer = client.parse_response(raw, extra[protocol.HEADER])
    assert np.array_equal(answer["logits"], logits) and answer["label"] == ["a", "b"]
    assert answer["model_version"] == "7"
    assert struct.unpack_from("<I", body, int(headers[protocol.HEADER]))[0] == len("héllo".encode())
