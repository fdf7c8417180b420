"""`graft serve`: a package folder, or a registry alias (`models:/NAME@ALIAS`) followed as it moves."""

from __future__ import annotations

import argparse
import functools
import ipaddress
import os
import sys
import tempfile
from pathlib import Path

from graft.cli.commands import _cfg, command
from graft.core.errors import GraftError

REGISTRY_PREFIX = "models:/"
TOKEN_ENV = "GRAFT_SERVE_TOKEN"


def parse_uri(uri: str) -> tuple[str, str]:
    """(NAME, ALIAS) of `models:/NAME@ALIAS`, or a one-line error."""
    name, _, alias = uri.removeprefix(REGISTRY_PREFIX).partition("@")
    if not name or not alias:
        raise GraftError(f"{uri}: a registry model is models:/NAME@ALIAS (e.g. models:/graft-text@champion)")
    return name, alias


def last_good_dir(serve_cfg, name: str) -> Path:
    """Where the last version of registry model `name` that served well is kept (serve.last_good_dir)."""
    root = serve_cfg.last_good_dir or Path(tempfile.gettempdir()) / "graft-serve-last-good"
    return Path(root) / name


def registry_source(uri: str, registry_cfg, serve_cfg):
    """A `Source` for `models:/NAME@ALIAS`: the alias' version, downloaded and digest-checked; its last-good copy."""
    from graft.promote import registry
    from graft.serve.source import Source

    name, alias = parse_uri(uri)
    cfg = registry_cfg.model_copy(update={"model_name": name, "alias": alias})
    where = registry.tracking_uri(cfg)

    @functools.cache  # connected once, on first use: a store not there yet is a resolve error (retried next poll)
    def reg():
        return registry.Registry(cfg)

    def resolve() -> str:
        current = reg().champion()
        if current is None:
            raise GraftError(f"{uri}: no version of {name!r} has the alias {alias!r} in {where}")
        return str(current["version"])

    return Source(resolve, lambda version, dest: reg().download(int(version), dest), last_good_dir(serve_cfg, name),
                  f"{where} {name}@{alias}")


def _start(source, precision: str):
    """The version to serve first: the alias' own, else the last-good copy (degraded), else a one-line error."""
    from graft.serve import server

    try:
        version = source.resolve()
    except GraftError as exc:  # the registry is down or the alias is gone
        return _fallback(source, precision, str(exc), None)
    try:
        folder = source.fetch(version)
        served = server.load(folder, version, precision)
    except GraftError as exc:
        source.refused[version] = str(exc)
        source.retire(version)
        return _fallback(source, precision, str(exc), version)
    source.keep(version, folder)
    return served, None


def _fallback(source, precision: str, why: str, version: str | None):
    from graft.serve import server

    kept = source.last_good()
    if kept is None:
        raise GraftError(f"{why} (and no last-good version is kept in {source.last_good_dir} to serve instead)")
    degraded = (f"serving the last-good version {kept[0]}: "
                + (f"the alias points at version {version}, which cannot be served ({why})" if version else why))
    print(f"graft serve: DEGRADED: {degraded}", file=sys.stderr, flush=True)
    return server.load(kept[1], kept[0], precision), degraded


def _token(serve_cfg) -> str | None:
    """The bearer token: GRAFT_SERVE_TOKEN, else serve.auth_token_file's content, else None (no authentication)."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    if serve_cfg.auth_token_file:
        token = Path(serve_cfg.auth_token_file).read_text().strip()
        if not token:
            raise GraftError(f"{serve_cfg.auth_token_file}: the token file is empty (serve.auth_token_file)")
        return token
    return None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@command
def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a model package over the Open Inference Protocol (KServe V2 REST): health, metadata, infer, /metrics.

    --model is a package folder written by `graft export` (models/onnx), or models:/NAME@ALIAS: the registry version
    the alias points at, polled every serve.poll_seconds; when the alias moves, the new version is downloaded, its
    digest checked, loaded, probed and swapped in without dropping a request (a broken one is refused, the old one
    keeps serving). Each version that served is kept as the last-good copy (serve.last_good_dir): when the alias
    points at a version that cannot be served, or the registry is down, the server starts from it, DEGRADED (the
    readiness answer and /metrics say so), and keeps polling.
    Settings (batching, limits, timeouts, token, port) are params.yaml's `serve` section; --host/--port override it.
    With --supervise the server runs as a child process that is restarted with backoff when it dies.
    """
    from graft.core.config import RegistryConfig, ServeConfig
    from graft.serve import server

    cfg = _cfg(args) if Path(args.params).is_file() or args.params != "params.yaml" else None
    serve_cfg = cfg.serve if cfg else ServeConfig()
    host, port = args.host or serve_cfg.host, serve_cfg.port if args.port is None else args.port
    if not 1 <= port <= 65535:
        raise GraftError(f"--port {port} is out of range: a port is 1-65535")
    registry_cfg = cfg.registry if cfg else RegistryConfig()
    token = _token(serve_cfg)
    if token is None and not _loopback(host):
        print(f"graft serve: warning: listening on {host} without a token: anyone who can reach it can call the "
              f"model (set serve.auth_token_file or {TOKEN_ENV})", file=sys.stderr, flush=True)
    if args.supervise:
        from graft.serve.supervisor import supervise

        kept = last_good_dir(serve_cfg, parse_uri(args.model)[0]) if args.model.startswith(REGISTRY_PREFIX) else None
        return supervise(["--model", args.model, "--params", args.params, "--host", host, "--port", str(port),
                          *(["--int8"] if args.int8 else [])], host, port, kept)
    sock = server.bind(host, port)  # first: a port in use is one line before anything is downloaded
    precision = "int8" if args.int8 else "fp32"
    source, degraded = None, None
    try:
        if args.model.startswith(REGISTRY_PREFIX):
            source = registry_source(args.model, registry_cfg, serve_cfg)
            served, degraded = _start(source, precision)
            if serve_cfg.model_name is None:
                serve_cfg = serve_cfg.model_copy(update={"model_name": parse_uri(args.model)[0]})
        else:
            folder = Path(args.model)
            if not folder.is_dir():
                raise GraftError(f"{folder}: no such package folder (give one written by `graft export`, e.g. "
                                 f"models/onnx, or models:/NAME@ALIAS)")
            served = server.load(folder, "1", precision)  # a folder is one version
            if serve_cfg.model_name is None:  # the name it is registered under (registry.model_name)
                serve_cfg = serve_cfg.model_copy(update={"model_name": registry_cfg.model_name})
        srv = server.Server(served, serve_cfg, source, precision, degraded, token)
        server.run(srv, host, port, sock)
    finally:
        sock.close()
        if source is not None:
            source.close()
    return 0


def add_parser(sub) -> None:
    """The `serve` subcommand's arguments."""
    sp = sub.add_parser("serve", help=cmd_serve.__doc__.splitlines()[0], description=cmd_serve.__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("--params", default="params.yaml", help="params.yaml to read, for `serve` and `registry` "
                    "(default: %(default)s; built-in defaults when absent)")
    sp.add_argument("--model", required=True, help="the ONNX package folder `graft export` writes (models/onnx), "
                    "or a registered version: models:/NAME@ALIAS")
    sp.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    sp.add_argument("--port", type=int, help="port, 1-65535 (default: serve.port, 8080)")
    sp.add_argument("--int8", action="store_true", help="serve the int8 model (smaller, faster; gate-checked)")
    sp.add_argument("--supervise", action="store_true", help="run the server as a child process and restart it "
                    "with backoff when it dies (kill -9, a crash); a startup failure exits instead, unless a "
                    "last-good version is kept to start from")
