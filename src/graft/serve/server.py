"""`graft serve`: an exported package behind the Open Inference Protocol (KServe V2 REST), with dynamic batching.

The server is FastAPI on uvicorn over the same `Package` as `graft predict` (ONNX Runtime, no torch). It serves one
model under one name. Given a `Source` (a registry alias), it polls it and, when the alias moves, loads the new
package beside the old one, probes it, and swaps it in between two batches: requests in flight finish on the
version they started on, and a version that fails to load or to answer is refused (and not fetched again) while the
old one keeps serving. A server started from the last-good copy because the alias' version could not be served is
`degraded`: readiness says why, `/metrics` has `graft_degraded 1`, and it keeps polling. `/metrics` is Prometheus'
text format.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graft.core.config import ServeConfig
from graft.core.errors import GraftError
from graft.serve import protocol
from graft.serve.batching import Batcher
from graft.serve.predict import Package
from graft.serve.source import Source

log = logging.getLogger("graft.serve")

DEFAULT_NAME = "graft"  # the name earlier releases served every model under: still answered, beside the real one


@dataclass(frozen=True)
class Served:
    """One loaded version: its package, the version string clients see, and the parameters responses carry."""

    package: Package
    version: str

    @property
    def parameters(self) -> dict:
        """What every response and the metadata carry: version, data md5, backbone, modality."""
        meta = self.package.meta
        backbone = meta.get("backbone") or {}
        return {"model_version": self.version, "data_md5": meta.get("data_md5", ""),
                "backbone": backbone.get("name", "") if isinstance(backbone, dict) else str(backbone),
                "modality": self.package.modality.name}


def load(folder: str | Path, version: str, precision: str = "fp32") -> Served:
    """Load a package and check that it answers a probe input with one finite row of logits per class."""
    pkg = Package(folder, precision)
    try:
        z = pkg.logits(pkg.modality.probe(pkg.meta))
    except Exception as exc:  # onnxruntime, tokenizers and Pillow raise their own types
        raise GraftError(f"{folder}: the package does not answer a probe request ({str(exc).splitlines()[0]})"
                         ) from None
    if z.shape != (1, len(pkg.labels)) or not np.isfinite(z).all():
        raise GraftError(f"{folder}: the probe request got logits of shape {z.shape}, expected (1, {len(pkg.labels)})")
    return Served(pkg, version)


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (several servers may live in one process)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("graft_requests", "Requests by endpoint and HTTP status", ["endpoint", "status"],
                                registry=self.registry)
        self.latency = Histogram("graft_request_seconds", "Time from request to response, by endpoint",
                                 ["endpoint"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self.batch = Histogram("graft_batch_size", "Inputs per ONNX Runtime call", registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.model = Gauge("graft_model_version", "1 for the version being served", ["version"],
                           registry=self.registry)
        self.swaps = Counter("graft_model_swaps", "Alias moves seen, by result (swapped, refused)", ["result"],
                             registry=self.registry)
        self.degraded = Gauge("graft_degraded", "1 while serving the last-good version because the alias' version "
                              "cannot be served", registry=self.registry)
        self.poll_errors = Counter("graft_registry_poll_errors", "Polls of the registry alias that failed",
                                   registry=self.registry)


class Server:
    """The serving state: the current version, the batcher and the metrics; `app()` is its ASGI application."""

    def __init__(self, served: Served, cfg: ServeConfig, source: Source | None = None, precision: str = "fp32",
                 degraded: str | None = None, token: str | None = None):
        self.served, self.cfg, self.source, self.precision = served, cfg, source, precision
        self.name = cfg.model_name or DEFAULT_NAME
        self.token = token
        self.metrics = Metrics()
        self.metrics.model.labels(served.version).set(1)
        self.degraded = None
        self._degrade(degraded)
        self.batcher = Batcher(cfg.max_batch, cfg.max_delay_ms, self.metrics.batch.observe)

    def metadata(self) -> dict:
        """V2 model metadata: the real tensor names, datatypes and shapes (-1 where a dimension varies)."""
        s = self.served
        k = len(s.package.labels)
        return {"name": self.name, "versions": [s.version], "platform": "onnxruntime_onnx",
                "inputs": [{"name": s.package.modality.wire_name, "datatype": "BYTES", "shape": [-1]}],
                "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, k]},
                            {"name": "probabilities", "datatype": "FP32", "shape": [-1, k]},
                            {"name": "label", "datatype": "BYTES", "shape": [-1]}],
                "parameters": {**s.parameters, "labels": list(s.package.labels)}}

    def check_model(self, name: str, version: str | None) -> None:
        """404 unless `name` (and `version`, when given) is what this server serves."""
        if name not in (self.name, DEFAULT_NAME):
            raise protocol.ProtocolError(404, f"unknown model {name!r} (this server serves {self.name!r})")
        if version is not None and version != self.served.version:
            raise protocol.ProtocolError(404, f"model {name!r} has no version {version!r} here "
                                              f"(serving {self.served.version})")

    async def infer(self, body: bytes, header_length: str | None) -> tuple[bytes, dict[str, str]]:
        """Answer one infer request (already size-checked) on the version current when it arrived."""
        served = self.served
        request = protocol.parse_infer(body, header_length, served.package.modality, self.cfg)
        logits = await self.batcher.submit(served.package.logits, request.items)
        return protocol.encode_infer(request, logits, served.package.labels, self.name, served.version,
                                     served.parameters)

    def _degrade(self, why: str | None) -> None:
        self.degraded = why
        self.metrics.degraded.set(1 if why else 0)

    async def poll(self) -> None:
        """Follow the source: when it names a new version, load and probe it beside the old one, then swap."""
        source = self.source
        while True:
            await asyncio.sleep(self.cfg.poll_seconds)
            try:
                version = await asyncio.to_thread(source.resolve)
            except Exception as exc:  # a registry outage: keep serving what we have
                self.metrics.poll_errors.inc()
                log.warning("graft serve: %s did not answer (%s); still serving version %s", source.describe,
                            str(exc).splitlines()[0], self.served.version)
                continue
            if version == self.served.version or version in source.refused:
                continue
            try:
                folder = await asyncio.to_thread(source.fetch, version)
                new = await asyncio.to_thread(load, folder, version, self.precision)
            except Exception as exc:  # a broken new version is refused; the old one keeps serving
                why = str(exc).splitlines()[0]
                source.refused[version] = why
                source.retire(version)
                log.warning("graft serve: refused the new version %s: %s", version, why)
                self.metrics.swaps.labels("refused").inc()
                if self.degraded:
                    self._degrade(f"serving the last-good version {self.served.version}: the alias points at "
                                  f"version {version}, which cannot be served ({why})")
                continue
            old, self.served = self.served, new
            self.metrics.model.labels(old.version).set(0)
            self.metrics.model.labels(new.version).set(1)
            self.metrics.swaps.labels("swapped").inc()
            self._degrade(None)
            log.warning("graft serve: now serving version %s (was %s)", new.version, old.version)
            await asyncio.to_thread(source.keep, version, folder)
            source.retire(old.version)

    def app(self):
        """The FastAPI application."""
        from graft.serve.routes import build

        return build(self)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error (port in use, address not on this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        what = "is in use by another process" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        raise GraftError(f"{host}:{port} {what}: choose another with --port or serve.port") from None
    return sock  # bound, not listening: connections are refused until uvicorn starts serving (it calls listen)


def run(server: Server, host: str, port: int, sock: socket.socket | None = None) -> None:
    """Serve until interrupted (uvicorn, one process; the batcher's thread does the inference).

    The socket is bound before uvicorn starts, so a port in use is one line, not a traceback; open connections are
    bounded by serve.max_connections (uvicorn answers 503 beyond it).
    """
    import uvicorn

    sock = sock or bind(host, port)
    print(f"graft serve: {server.name} version {server.served.version} on http://{host}:{port}/v2"
          + (f" (DEGRADED: {server.degraded})" if server.degraded else ""), flush=True)
    config = uvicorn.Config(server.app(), log_level="warning", access_log=False,
                            limit_concurrency=server.cfg.max_connections + 1)  # uvicorn counts the arriving one
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler it found: make that
    # handler an orderly exit, so the caller's cleanup (downloads, the socket) runs instead of a kill by the signal
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(signum, _frame) -> None:
    raise SystemExit(0)
