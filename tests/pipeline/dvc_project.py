"""A git + DVC copy of the project on the shrunk config, for the DVC pipeline tests (three files, so that pytest's
workers can run them side by side)."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.shrink import ROOT, shrunk_params, write_params


def sh(*cmd, cwd, check=True, env=None):
    res = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, env=env)
    if check and res.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def copy_code(tmp: Path) -> None:
    """The code a checkout has: src/, bin/graft (what dvc.yaml's commands run), data/target/ and a link to the venv."""
    shutil.copytree(ROOT / "src", tmp / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "bin", tmp / "bin")
    for target in ("data/target", "image/data/target"):  # each workspace's folder for data.target (a prepare dep)
        shutil.copytree(ROOT / target, tmp / target)
    (tmp / ".venv").symlink_to(Path(sys.prefix))


def new_project(tmp: Path) -> Path:
    """The copy with the shrunk params and the pinned raw data in place (nothing run yet)."""
    for name in ("dvc.yaml", "data.dvc", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, tmp / name)
    copy_code(tmp)
    (tmp / ".dvc").mkdir()
    shutil.copy(ROOT / ".dvc" / "config", tmp / ".dvc" / "config")
    shutil.copytree(ROOT / ".dvc" / "plots", tmp / ".dvc" / "plots")  # the offline page template the config names
    params = shrunk_params(tmp)
    params["validate"]["profile_dir"] = "data/profiles"  # a DVC out: inside the project, relative
    write_params(tmp, params)
    sh("git", "init", "-q", cwd=tmp)
    sh("graft", "materialize", cwd=tmp)
    assert "modified" not in sh("dvc", "status", "data.dvc", cwd=tmp).stdout  # the copy matches the pin
    sh("dvc", "commit", "-q", "-f", "data.dvc", cwd=tmp)
    return tmp
