import pytest

from graft.core.artifacts import atomic_dir, read_json, write_json
from graft.core.errors import GraftError


def test_atomic_dir_keeps_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("killed mid-write")
    assert (target / "weights").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary leftovers


def test_atomic_dir_replaces_on_success(tmp_path):
    target = tmp_path / "model"
    for version in ("v1", "v2"):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text(version)
    assert (target / "weights").read_text() == "v2"
    assert oct(target.stat().st_mode & 0o777) == "0o755"


def test_write_json_round_trip(tmp_path):
    write_json(tmp_path / "a" / "m.json", {"x": [1, 2]})
    assert read_json(tmp_path / "a" / "m.json") == {"x": [1, 2]}


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(GraftError, match="select.json: not found"):
        read_json(tmp_path / "select.json")
    (tmp_path / "bad.json").write_text("{half")
    with pytest.raises(GraftError, match="bad.json: not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_a_stage_output_is_validated_when_read(tmp_path):
    import json

    import pytest

    from graft.core import outputs
    from graft.core.errors import GraftError

    good = {"passed": True, "reasons": [], "checks": [], "registered": None}
    outputs.write(tmp_path / "gate.json", "gate", good)
    assert outputs.read(tmp_path / "gate.json", "gate") == good
    (tmp_path / "old.json").write_text(json.dumps({"passed": True, "checks": []}))
    with pytest.raises(GraftError, match=r"old\.json: not a valid gate output: reasons: Field required"):
        outputs.read(tmp_path / "old.json", "gate")
    (tmp_path / "bad.json").write_text(json.dumps({**good, "checks": [{"name": "x"}]}))
    with pytest.raises(GraftError, match=r"bad\.json: not a valid gate output: checks\.0\.value: Field required"):
        outputs.read(tmp_path / "bad.json", "gate")
    with pytest.raises(GraftError, match="not a valid evaluate output"):
        outputs.write(tmp_path / "e.json", "evaluate", {"finetune": {}})
    assert not (tmp_path / "e.json").exists()  # nothing half-written
