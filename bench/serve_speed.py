"""Side-by-side under load: `graft serve` (batching with a 2 ms wait, with none, without) and a KServe peer.

The peer is `bench/kserve_peer.py`: kserve.Model + ModelServer over the same ONNX Runtime session.

Each contender is a fresh server process on a loopback port, called by an asyncio client (aiohttp) that keeps
`concurrency` one-text V2 infer requests in flight for a fixed duration, for concurrency 1, 8 and 32; every server
gets the same JSON requests (`outputs: [label]`). Contenders and repeats are interleaved (A B C D A B C D ...), so a
busy moment of the machine hits all of them. Printed per contender and concurrency: requests/s, p50 and p99 latency
(median over repeats, with the min-max spread of the throughput) and errors; then the ratios, and `graft predict`'s
in-process latency for one text (the same Package call, no HTTP), so the difference at concurrency 1 is the HTTP
overhead.

Run after `make run` (it reads models/onnx and data/prepared) and `make kserve-env` (the peer's virtualenv,
.venv-kserve: kserve 0.21 needs pandas < 3, so it cannot share graft's); only 127.0.0.1 is used:
    .venv/bin/python bench/serve_speed.py [--seconds 6] [--repeats 3]
"""

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from graft.serve.client import free_port

GRAFT = {"batching 2 ms": {"max_batch": 32, "max_delay_ms": 2},
         "batching 0 ms": {"max_batch": 32, "max_delay_ms": 0},
         "no batching": {"max_batch": 1, "max_delay_ms": 0}}
PEER = "kserve peer"
CONTENDERS = (*GRAFT, PEER)
CONCURRENCY = (1, 8, 32)
KSERVE_PYTHON = Path(".venv-kserve/bin/python")


def start(name: str, package: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    """A fresh server for contender `name` (graft serve with its settings, or the KServe peer), once it is ready."""
    import urllib.request

    port = free_port()
    if name == PEER:
        argv = [str(KSERVE_PYTHON), str(Path(__file__).with_name("kserve_peer.py")), "--package", package,
                "--model_name", "graft", "--http_port", str(port), "--enable_grpc", "false", "--workers", "1",
                "--configure_logging", "false"]
    else:
        params = tmp / f"params-{port}.yaml"
        base = yaml.safe_load(Path("params.yaml").read_text())
        base["serve"] = {**base.get("serve", {}), **GRAFT[name]}
        params.write_text(yaml.safe_dump(base))
        argv = [sys.executable, "-m", "graft.cli", "serve", "--model", package, "--params", str(params),
                "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{name} did not become ready")


async def load(url: str, name: str, texts: list[str], concurrency: int, seconds: float) -> dict:
    """Keep `concurrency` requests in flight for `seconds`; latencies (ms) and error count."""
    import aiohttp

    latencies, errors, stop = [], 0, time.perf_counter() + seconds

    async def worker(k: int, session) -> None:
        nonlocal errors
        i = k
        while time.perf_counter() < stop:
            body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [texts[i % len(texts)]]}],
                    "outputs": [{"name": "label"}]}
            started = time.perf_counter()
            async with session.post(f"{url}/v2/models/{name}/infer", json=body) as r:
                await r.read()
                if r.status == 200:
                    latencies.append(1000 * (time.perf_counter() - started))
                else:
                    errors += 1
            i += concurrency

    limits = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=limits) as session:
        await asyncio.gather(*(worker(k, session) for k in range(concurrency)))
    return {"rps": len(latencies) / seconds, "p50": float(np.percentile(latencies, 50)),
            "p99": float(np.percentile(latencies, 99)), "errors": errors}


def main() -> None:
    """Run the contenders interleaved, print medians, spread and ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default="models/onnx")
    ap.add_argument("--splits", default="data/prepared")
    ap.add_argument("--seconds", type=float, default=6.0, help="load duration per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from graft.data.tables import read_splits
    from graft.serve.predict import Package

    texts = read_splits(args.splits)["test"]["text"].astype(str).tolist()
    pkg = Package(args.package)
    pkg.predict(texts[:1])
    inproc = []
    for t in texts[:300]:
        started = time.perf_counter()
        pkg.predict([t])
        inproc.append(1000 * (time.perf_counter() - started))
    runs: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for name in CONTENDERS:
                proc, url = start(name, args.package, Path(tmp))
                try:
                    asyncio.run(load(url, "graft", texts, 8, 1.0))  # warm-up
                    for c in CONCURRENCY:
                        runs.setdefault((name, c), []).append(asyncio.run(load(url, "graft", texts, c, args.seconds)))
                finally:
                    proc.terminate()
                    proc.wait(20)
            print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)

    med = {k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50", "p99")} for k, v in runs.items()}
    print(f"{len(texts)} test texts, one per request, {args.seconds:g} s per run, {args.repeats} interleaved repeats, "
          f"fresh server each; medians (throughput min-max)")
    print(f"{'':14}{'conc':>5}{'req/s':>9}{'min-max':>15}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for (name, c), v in runs.items():
        rps = [r["rps"] for r in v]
        print(f"{name:14}{c:>5}{med[name, c]['rps']:>9.0f}{f'{min(rps):.0f}-{max(rps):.0f}':>15}"
              f"{med[name, c]['p50']:>9.2f}{med[name, c]['p99']:>9.2f}{sum(r['errors'] for r in v):>8}")
    for name in GRAFT:
        for other in (PEER, "no batching"):
            if name == other:
                continue
            for c in CONCURRENCY:
                a, b = med[name, c], med[other, c]
                print(f"concurrency {c:>2}: {name} throughput {a['rps'] / b['rps']:.2f}x, "
                      f"p99 {a['p99'] / b['p99']:.2f}x of {other}")
    p50 = statistics.median(inproc)
    http = med["no batching", 1]["p50"] - p50
    default = med["batching 2 ms", 1]["p50"]
    print(f"in-process Package.predict, one text: p50 {p50:.2f} ms; graft serve at concurrency 1: p50 "
          f"{med['no batching', 1]['p50']:.2f} ms (no batching), so HTTP + protocol cost {http:.2f} ms")
    print(f"batching 2 ms (the default) at concurrency 1: p50 {default:.2f} ms, {default - p50 - http:+.2f} ms over "
          f"in-process + HTTP (target within 1 ms: a lone request does not wait for the batch delay)")


if __name__ == "__main__":
    main()
