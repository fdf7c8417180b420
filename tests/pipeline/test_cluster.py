"""`graft pipeline submit|schedule`: the requests the real kfp.Client sends, caught by a stand-in KFP API server.

No cluster runs here: a small HTTP server answers the few KFP v2beta1 endpoints the client calls and records every
request, so the test checks what a cluster would receive (method, path, pipeline spec, arguments, schedule).
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from graft.cli import main
from tests.shrink import ROOT

REPLIES = {
    ("GET", "/apis/v2beta1/healthz"): {"multi_user": False},
    ("GET", "/apis/v2beta1/experiments"): {"experiments": []},
    ("POST", "/apis/v2beta1/experiments"): {"experiment_id": "exp-1", "display_name": "graft"},
    ("POST", "/apis/v2beta1/runs"): {"run_id": "run-1", "display_name": "graft-transfer"},
    ("POST", "/apis/v2beta1/recurringruns"): {"recurring_run_id": "rr-1", "display_name": "graft-retrain"},
}


@pytest.fixture()
def kfp_api():
    """A stand-in KFP API on a free local port; yields (url, list of recorded (method, path, body))."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method):
            path = self.path.split("?")[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            seen.append((method, path, body))
            reply = REPLIES.get((method, path))
            self.send_response(200 if reply is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(reply or {"error": "not found"}).encode())

        def do_GET(self):  # noqa: N802 (http.server's naming)
            self._reply("GET")

        def do_POST(self):  # noqa: N802
            self._reply("POST")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def spec_of(body: dict) -> dict:
    """The PipelineSpec inside a request (kfp sends it beside the platform spec when there is one)."""
    return body["pipeline_spec"].get("pipeline_spec", body["pipeline_spec"])


def posted(seen, path):
    return [body for method, p, body in seen if method == "POST" and p == path]


def test_submit_sends_the_compiled_pipeline_with_params_as_config(kfp_api, capsys):
    url, seen = kfp_api
    assert main(["pipeline", "submit", "--host", url, "--params", str(ROOT / "params.yaml"),
                 "--package", str(ROOT / "pipelines" / "compiled" / "graft_pipeline.yaml")]) == 0
    assert "submitted run run-1" in capsys.readouterr().out
    (run,) = posted(seen, "/apis/v2beta1/runs")
    assert run["experiment_id"] == "exp-1" and spec_of(run)["pipelineInfo"]["name"] == "graft-transfer"
    assert "kubernetes" in run["pipeline_spec"]["platform_spec"]["platforms"]  # PVC, secret: the cluster settings
    config = run["runtime_config"]["parameters"]["config"]
    assert config["data"]["labels"] == yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["labels"]
    assert posted(seen, "/apis/v2beta1/experiments") == [{"display_name": "graft"}]


def test_schedule_creates_a_recurring_run_from_a_five_field_cron(kfp_api, capsys):
    url, seen = kfp_api
    assert main(["pipeline", "schedule", "--host", url, "--params", str(ROOT / "image" / "params.yaml"),
                 "--cron", "0 3 * * 1"]) == 0
    assert "recurring run rr-1 created" in capsys.readouterr().out
    (job,) = posted(seen, "/apis/v2beta1/recurringruns")
    assert job["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"  # KFP's cron has seconds first
    assert int(job["max_concurrency"]) == 1 and job["no_catchup"] is True and job["experiment_id"] == "exp-1"
    assert job["runtime_config"]["parameters"]["config"]["data"]["modality"] == "image"
    assert spec_of(job)["pipelineInfo"]["name"] == "graft-transfer"


def test_bad_cron_and_unreachable_host_are_one_line_errors(capsys):
    assert main(["pipeline", "schedule", "--host", "http://127.0.0.1:9", "--cron", "3 * *"]) == 1
    assert main(["pipeline", "submit", "--host", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("graft pipeline: error: --cron '3 * *': expected 5 fields")
    assert err[-1].startswith("graft pipeline: error: KFP API http://127.0.0.1:9:")
