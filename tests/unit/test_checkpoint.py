import pickle
import random

import numpy as np
import pytest
import torch

from graft.train import checkpoint


def test_a_checkpoint_round_trips_with_weights_only_and_restores_every_rng(tmp_path):
    gen = torch.Generator().manual_seed(3)
    random.seed(1)
    np.random.seed(2)
    state = {"fingerprint": "abc", "rng": checkpoint.rng_state(gen), "model": {"w": torch.ones(2)},
             "history": [{"epoch": 1, "val_loss": 0.5}], "best": None, "batches": [[1, 2], [3]]}
    expected = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item())
    checkpoint.save(tmp_path, state)
    loaded = checkpoint.load(tmp_path, "abc")
    checkpoint.set_rng_state(loaded["rng"], gen)
    assert (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item()) == expected
    assert loaded["history"] == state["history"] and torch.equal(loaded["model"]["w"], torch.ones(2))
    assert checkpoint.load(tmp_path, "another run") is None


def test_each_write_goes_over_the_spare_file_and_a_failed_one_leaves_the_last_checkpoint(tmp_path):
    for step in range(3):
        checkpoint.save(tmp_path, {"fingerprint": "abc", "step": step, "w": torch.full((1000,), float(step))})
    current, spare = tmp_path / checkpoint.STATE, tmp_path / checkpoint.SPARE
    assert checkpoint.load(tmp_path, "abc")["step"] == 2
    assert spare.stat().st_ino != current.stat().st_ino and spare.stat().st_nlink == current.stat().st_nlink == 1
    assert torch.load(spare, weights_only=True)["step"] == 1  # the checkpoint before: what the next write overwrites
    written_over = spare.stat().st_ino
    checkpoint.save(tmp_path, {"fingerprint": "abc", "step": 3})
    assert current.stat().st_ino == written_over and checkpoint.load(tmp_path, "abc")["step"] == 3
    with pytest.raises((AttributeError, pickle.PicklingError)):  # dies halfway through writing the spare
        checkpoint.save(tmp_path, {"fingerprint": "abc", "w": torch.ones(1000), "cannot pickle": lambda: None})
    assert checkpoint.load(tmp_path, "abc")["step"] == 3
    checkpoint.save(tmp_path, {"fingerprint": "abc", "step": 4})
    assert checkpoint.load(tmp_path, "abc")["step"] == 4 and sorted(p.name for p in tmp_path.iterdir()) == \
        sorted([checkpoint.STATE, checkpoint.SPARE])


class Payload:
    """What an attacker would put in a checkpoint: unpickling it runs code."""

    def __reduce__(self):
        return (print, ("graft-test: this should never run",))


def test_a_tampered_checkpoint_is_ignored_with_one_warning_and_runs_nothing(tmp_path, capfd):
    (tmp_path / checkpoint.STATE).write_bytes(pickle.dumps({"fingerprint": "abc", "x": Payload()}))
    assert checkpoint.load(tmp_path, "abc") is None
    out, err = capfd.readouterr()
    assert "this should never run" not in out + err
    assert err.count("\n") == 1 and "not a graft checkpoint, ignored" in err and "training starts afresh" in err


def test_a_corrupt_checkpoint_is_ignored_too(tmp_path, capfd):
    (tmp_path / checkpoint.STATE).write_bytes(b"\x80\x04 not a checkpoint")
    assert checkpoint.load(tmp_path, "abc") is None
    assert "not a graft checkpoint, ignored" in capfd.readouterr().err


def test_the_writer_writes_now_in_the_foreground_and_a_snapshot_in_the_background(tmp_path):
    weights = torch.zeros(3)
    state = {"fingerprint": "abc", "model": {"w": weights}}
    now = checkpoint.Writer(background=False)
    now.submit(tmp_path / "now", state)
    assert checkpoint.load(tmp_path / "now", "abc")["model"]["w"].tolist() == [0.0, 0.0, 0.0]  # on disk already
    later = checkpoint.Writer(background=True)
    later.submit(tmp_path / "later", state)
    weights.add_(1.0)  # the next optimizer step, while the write may still be in flight
    later.wait()
    assert checkpoint.load(tmp_path / "later", "abc")["model"]["w"].tolist() == [0.0, 0.0, 0.0]


def test_a_failed_background_write_is_raised_in_the_training_thread(tmp_path):
    (tmp_path / "blocked").write_text("a file where the checkpoint folder should go")
    writer = checkpoint.Writer(background=True)
    writer.submit(tmp_path / "blocked", {"fingerprint": "abc"})
    with pytest.raises(OSError):
        writer.wait()
    writer.wait()  # raised once, then cleared
