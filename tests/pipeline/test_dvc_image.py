"""The image workspace (`image/`) through `dvc repro gate`, in its own copy of the project."""

import shutil
from pathlib import Path

import pytest

from graft.core.artifacts import read_json
from tests.pipeline.dvc_project import copy_code, sh
from tests.shrink import ROOT, shrunk_image_params, shrunk_params, write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image_project(tmp_path_factory, image_raw):
    """The project copy with its image/ workspace as the repository has it (its dvc.yaml a copy, src a link up)."""
    tmp = tmp_path_factory.mktemp("image-project")
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, tmp / name)
    copy_code(tmp)
    (tmp / ".dvc").mkdir()
    shutil.copy(ROOT / ".dvc" / "config", tmp / ".dvc" / "config")
    write_params(tmp, shrunk_params(tmp))  # DVC parses every dvc.yaml of the repository, the text one included
    ws = tmp / "image"
    ws.mkdir(exist_ok=True)
    shutil.copy(ROOT / "image" / "dvc.yaml", ws / "dvc.yaml")
    assert (ROOT / "image" / "src").is_symlink()
    (ws / "src").symlink_to(Path("..") / "src")
    (ws / "data" / "raw").mkdir(parents=True)
    shutil.copy(image_raw, ws / "data" / "raw" / image_raw.name)
    params = shrunk_image_params(ws)
    params["data"]["raw"] = f"data/raw/{image_raw.name}"
    params["validate"]["profile_dir"] = "data/profiles"
    write_params(ws, params)
    sh("git", "init", "-q", cwd=tmp)
    return ws, sh("dvc", "repro", "gate", cwd=ws)


def test_the_image_workspace_runs_the_same_stages(image_project):
    ws, first = image_project
    for stage in ("prepare", "validate", "select", "train", "baseline", "selfcheck", "evaluate", "export", "gate"):
        assert f"Running stage '{stage}'" in first.stdout
    assert (ws / "dvc.lock").is_file() and not (ws.parent / "dvc.lock").exists()
    evaluation = read_json(ws / "metrics" / "evaluate.json")
    assert evaluation["classical"]["method"].startswith("small CNN")
    gate = read_json(ws / "metrics" / "gate.json")
    assert gate["passed"] and gate["registered"]["model_name"] == "graft-image"
    assert read_json(ws / "models" / "onnx" / "graft_model.json")["modality"] == "image"
    assert "Running stage" not in sh("dvc", "repro", "gate", cwd=ws).stdout
