"""The code version stamped on models and compared by freshness: the commit, plus a hash of uncommitted code."""

import subprocess
from pathlib import Path

from graft.promote.lineage import git_commit


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_a_commit_and_each_code_edit_on_it_are_distinct_versions(tmp_path):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "image").mkdir()
    (repo / "src" / "train.py").write_text("lr = 1\n")
    (repo / "metrics.json").write_text("{}\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    sha = git(repo, "rev-parse", "HEAD")
    assert git_commit(repo) == sha

    (repo / "metrics.json").write_text('{"accuracy": 0.9}\n')  # what a run rewrites: not a code change
    assert git_commit(repo) == sha

    (repo / "src" / "train.py").write_text("lr = 2\n")
    one = git_commit(repo)
    assert one.startswith(f"{sha}-dirty-") and git_commit(repo / "image") == one  # from a workspace below too
    (repo / "src" / "train.py").write_text("lr = 3\n")
    two = git_commit(repo)
    assert two.startswith(f"{sha}-dirty-") and two != one

    (repo / "src" / "train.py").write_text("lr = 1\n")
    assert git_commit(repo) == sha
    (repo / "src" / "new.py").write_text("x = 1\n")  # a new, not yet added module is code too
    assert git_commit(repo).startswith(f"{sha}-dirty-")


def test_outside_git_the_version_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def test_the_params_hash_is_the_same_under_dvc_and_kfp(tmp_path):
    """kfp.local's config makes every path absolute; the hash covers what determines the model, not where it lives."""
    from graft_kfp.pipelines.__main__ import local_config

    from graft.core import config
    from graft.promote.lineage import params_hash

    root = Path(__file__).resolve().parents[2]
    for params in (root / "params.yaml", root / "image" / "params.yaml"):
        dvc = config.load(params)
        kfp = config.from_dict(local_config(str(params)))
        assert kfp.data.raw != dvc.data.raw  # the two orchestrators really see different paths
        assert params_hash(kfp) == params_hash(dvc)
    moved = config.load(root / "params.yaml")
    retrained = moved.model_copy(update={"train": moved.train.model_copy(update={"epochs": 5})})
    assert params_hash(retrained) != params_hash(moved)
