"""`graft serve`: a package folder, or a registry alias (`models:/NAME@ALIAS`) followed as it moves."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from graft.cli.commands import _cfg, command
from graft.core.errors import GraftError

REGISTRY_PREFIX = "models:/"


def parse_uri(uri: str) -> tuple[str, str]:
    """(NAME, ALIAS) of `models:/NAME@ALIAS`, or a one-line error."""
    name, _, alias = uri.removeprefix(REGISTRY_PREFIX).partition("@")
    if not name or not alias:
        raise GraftError(f"{uri}: a registry model is models:/NAME@ALIAS (e.g. models:/graft-text@champion)")
    return name, alias


def registry_source(uri: str, registry_cfg, cache: Path):
    """A `Source` for `models:/NAME@ALIAS`: the alias' version now, its package downloaded once into `cache`."""
    from graft.core.artifacts import atomic_dir
    from graft.promote import registry

    name, alias = parse_uri(uri)
    reg = registry_cfg.model_copy(update={"model_name": name, "alias": alias})

    def source() -> tuple[str, Path]:
        current = registry.champion(reg)
        if current is None:
            raise GraftError(f"{uri}: no version of {name!r} has the alias {alias!r} in {registry.tracking_uri(reg)}")
        dest = cache / f"v{current['version']}"
        if not dest.is_dir():
            _, client = registry.connect(reg)
            with atomic_dir(dest) as tmp:
                client.download_artifacts(current["run_id"], "model", str(tmp))
        return str(current["version"]), dest / "model"

    return source


@command
def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a model package over the Open Inference Protocol (KServe V2 REST): health, metadata, infer, /metrics.

    --model is a package folder written by `graft export` (models/onnx), or models:/NAME@ALIAS: the registry version
    the alias points at, polled every serve.poll_seconds; when the alias moves, the new version is loaded, probed
    and swapped in without dropping a request (a broken one is refused, the old one keeps serving).
    Settings (batching, limits, port) are params.yaml's `serve` section; --host/--port override it. With
    --supervise the server runs as a child process that is restarted when it dies (killed, crashed).
    """
    from graft.core.config import RegistryConfig, ServeConfig
    from graft.serve import server

    cfg = _cfg(args) if Path(args.params).is_file() or args.params != "params.yaml" else None
    serve_cfg = cfg.serve if cfg else ServeConfig()
    host, port = args.host or serve_cfg.host, args.port or serve_cfg.port
    if args.supervise:
        from graft.serve.supervisor import supervise

        return supervise(["--model", args.model, "--params", args.params, "--host", host, "--port", str(port),
                          *(["--int8"] if args.int8 else [])], host, port)
    precision = "int8" if args.int8 else "fp32"
    source = None
    if args.model.startswith(REGISTRY_PREFIX):
        cache = Path(tempfile.mkdtemp(prefix="graft-serve-"))
        source = registry_source(args.model, cfg.registry if cfg else RegistryConfig(), cache)
        version, folder = source()
        if serve_cfg.model_name is None:
            serve_cfg = serve_cfg.model_copy(update={"model_name": parse_uri(args.model)[0]})
    else:
        folder = Path(args.model)
        if not folder.is_dir():
            raise GraftError(f"{folder}: no such package folder (give one written by `graft export`, e.g. "
                             f"models/onnx, or models:/NAME@ALIAS)")
        version = "1"  # a folder is one version; a registry alias gives the registered version number
    srv = server.Server(server.load(folder, version, precision), serve_cfg, source, precision)
    server.run(srv, host, port)
    return 0


def add_parser(sub) -> None:
    """The `serve` subcommand's arguments."""
    sp = sub.add_parser("serve", help=cmd_serve.__doc__.splitlines()[0], description=cmd_serve.__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("--params", default="params.yaml", help="params.yaml to read, for `serve` and `registry` "
                    "(default: %(default)s; built-in defaults when absent)")
    sp.add_argument("--model", required=True, help="package folder (models/onnx) or models:/NAME@ALIAS")
    sp.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    sp.add_argument("--port", type=int, help="port (default: serve.port, 8080)")
    sp.add_argument("--int8", action="store_true", help="serve the int8 model (smaller, faster; gate-checked)")
    sp.add_argument("--supervise", action="store_true", help="run the server as a child process and restart it "
                    "when it dies after becoming ready (kill -9, a crash); a startup failure exits instead")
