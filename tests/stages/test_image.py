"""The image path through the library's stages on the shrunk image config (Fashion-MNIST, 32-pixel inputs)."""

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from graft import modalities
from graft.core import config
from graft.core.artifacts import read_json
from graft.core.errors import GraftError
from graft.data import prepare
from graft.data.tables import read_splits, read_table
from graft.data.validate import validate_tables
from graft.modalities.image import pixels as vision
from graft.modalities.image.model import build
from graft.models.classifier import predict_logits
from graft.promote import registry
from tests.fixtures import run_every_stage
from tests.shrink import said


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, image_shrunk):
    """Every stage, in order, on the shrunk image config; returns the paths they wrote and the verdict."""
    return run_every_stage(image_shrunk[1], tmp_path_factory.mktemp("image-run"), audit=False)


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def class_folders(root, image_raw, labels=("Trouser", "Bag", "Sneaker"), per_class=12):
    """A user's folder of class folders (`root/<label>/*.png`), filled with real Fashion-MNIST images."""
    table = pd.read_parquet(image_raw)
    for label in labels:
        (root / label).mkdir(parents=True)
        for i, blob in enumerate(table[table["label"] == label]["image"].head(per_class)):
            (root / label / f"{i:03d}.png").write_bytes(blob)
    return list(labels)


def test_pixels_are_three_channel_and_scaled_like_efficientnet_lite():
    grey = np.array([[0, 255], [127, 127]], dtype=np.uint8)
    x = vision.pixels([png(grey)], 2)
    assert x.shape == (1, 3, 2, 2) and x.dtype == np.float32
    assert np.allclose(x[0, 0], x[0, 2]) and np.isclose(x.min(), -127 / 128) and np.isclose(x.max(), 1.0)
    colour = np.zeros((4, 4, 3), dtype=np.uint8)
    colour[..., 2] = 255
    y = vision.pixels([png(colour)], 4)
    assert np.allclose(y[0, 2], 1.0) and np.allclose(y[0, 0], -127 / 128)


def test_selection_ranks_image_backbones_from_their_packages(image_run):
    ranking = read_json(image_run["select"])["ranking"]
    assert {r["name"] for r in ranking} == {"efficientnet-lite0", "efficientnet-lite1"}
    params = {r["name"]: r["params"] for r in ranking}
    assert params["efficientnet-lite0"] < params["efficientnet-lite1"]
    assert all(np.isfinite(r["logme"]) and 0 < r["probe_accuracy"] <= 1 and r["latency_ms"]["batch_1"] > 0
               for r in ranking)


def test_fine_tune_scratch_and_small_cnn_are_scored_on_the_same_test_split(image_run, image_shrunk):
    _, cfg = image_shrunk
    result = read_json(image_run["evaluate"])
    assert result["finetune"]["rows"] == result["scratch"]["rows"] == result["classical"]["rows"] == 50
    assert result["classical"]["method"] == "small CNN at 28 px"  # Fashion-MNIST's native side
    assert set(result["comparisons"]) >= {"finetune_vs_scratch", "finetune_vs_classical"}
    trained = read_json(image_run["train"]), read_json(image_run["baseline"])
    assert [t["init_from"] for t in trained] == ["pretrained", "scratch"]
    meta = read_json(image_run["finetune"] / "graft_model.json")
    assert meta["modality"] == "image" and meta["image_size"] == 32 and meta["labels"] == list(cfg.data.labels)


def test_onnx_export_has_a_dynamic_batch_and_matches_pytorch(image_run):
    parity = read_json(image_run["export"])
    assert parity["rows"] == 50 and parity["fp32"]["agreement"] == 1.0 and parity["fp32"]["max_abs_diff"] < 1e-3
    assert parity["size_mb"]["int8"] < parity["size_mb"]["fp32"] / 2
    from graft.serve.predict import Package

    pkg = Package(image_run["onnx"])
    shape = pkg.session.get_inputs()[0].shape
    assert shape[0] == "batch" and shape[1:] == [3, 32, 32]
    images = read_splits(image_run["splits"])["test"]["image"].tolist()
    assert pkg.logits(images[:1]).shape == (1, 10) and pkg.logits(images[:7]).shape == (7, 10)
    assert not (image_run["onnx"] / "tokenizer.json").exists()


def test_the_image_folder_says_how_to_load_it_and_its_snippet_works(image_run, tmp_path):
    import torch

    from graft.modalities import load_model
    from graft.models.classifier import predict_logits

    folder = image_run["finetune"]
    readme = (folder / "README.md").read_text()
    assert readme.startswith("---\nlibrary_name: graft\n") and not (folder / "config.json").exists()
    image = read_splits(image_run["splits"])["test"]["image"].iloc[0]
    (tmp_path / "shirt.png").write_bytes(image)
    code = readme.split("```python\n")[1].split("```")[0]
    code = code.replace("path/to/this/folder", str(folder)).replace('"shirt.png"', repr(str(tmp_path / "shirt.png")))
    scope: dict = {}
    exec(code, scope)  # noqa: S102 (the README's own snippet)
    processor, model, _ = load_model(folder)
    expected = torch.softmax(torch.from_numpy(predict_logits(model, processor, [image], 1)), -1)
    assert abs(scope["probabilities"].detach() - expected).max() < 1e-4


def test_the_gate_decides_image_runs_with_the_same_checks(image_run):
    names = [c["name"] for c in image_run["verdict"]["checks"]]
    assert {"min_macro_f1", "transfer_benefit", "onnx_agreement", "int8_accuracy_drop_pt"} <= set(names)
    assert image_run["verdict"]["passed"], image_run["verdict"]["reasons"]


def test_infra_validation_serves_image_rows_as_graft_predict_does(image_run, image_shrunk):
    from graft.promote import infra

    cfg = image_shrunk[1]
    result = infra.validate(image_run["onnx"], image_run["splits"], cfg)
    assert result["passed"], result["why"]
    assert result["answered"] == result["agree"] == result["rows"] == min(cfg.gate.infra_rows, len(
        read_splits(image_run["splits"])["test"]))
    assert result["max_abs_diff"] <= cfg.gate.max_onnx_logit_diff


def test_predict_serves_image_files_without_torch(image_run, tmp_path):
    test = read_splits(image_run["splits"])["test"].head(6)
    paths = []
    for i, blob in enumerate(test["image"]):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(blob)
    (tmp_path / "in.txt").write_text("\n".join(map(str, paths)) + "\n")
    code = ("import sys; sys.modules['torch'] = None\n"
            "from graft.cli import main\n"
            f"sys.exit(main(['predict', '--model', {str(image_run['onnx'])!r}, '--input', "
            f"{str(tmp_path / 'in.txt')!r}]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    from graft import modalities as gm

    proc, net, meta = gm.load_model(image_run["finetune"])
    expected = predict_logits(net, proc, test["image"].tolist(), 64).argmax(1)
    assert [r["label"] for r in rows] == [meta["labels"][i] for i in expected]
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "in.txt").write_text(f"{tmp_path / 'bad.png'}\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 1 and "bad.png: not a decodable image" in res.stderr


def test_a_folder_of_class_folders_is_read_with_labels_from_the_folder_names(tmp_path, image_raw, image_shrunk):
    labels = class_folders(tmp_path / "imgs", image_raw)
    params, _ = image_shrunk
    cfg = config.from_dict({**params, "data": {**params["data"], "raw": str(tmp_path / "imgs"), "labels": labels}})
    table = read_table(tmp_path / "imgs", cfg.data)
    assert len(table) == 36 and sorted(table["label"].unique()) == sorted(labels)
    assert all(p.startswith(str(tmp_path / "imgs")) for p in table["path"])
    assert validate_tables({"data": table}, cfg, "data").passed


def test_a_corrupt_file_in_an_image_folder_is_rejected_with_its_name(tmp_path, image_raw, image_shrunk):
    labels = class_folders(tmp_path / "imgs", image_raw)
    (tmp_path / "imgs" / "Bag" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00 truncated")
    params, _ = image_shrunk
    params = {**params, "data": {**params["data"], "raw": str(tmp_path / "imgs"), "labels": labels}}
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    res = subprocess.run(["graft", "validate", "--params", str(tmp_path / "params.yaml"), "--data",
                          str(tmp_path / "imgs")], capture_output=True, text=True)
    assert res.returncode == 1
    lines = said(res.stderr)
    assert len(lines) == 1 and "image_decodable" in lines[0] and "Bag/broken.png" in lines[0]
    assert "Traceback" not in res.stderr


def test_duplicate_blank_and_tiny_images_are_named(image_raw, image_shrunk):
    _, cfg = image_shrunk
    splits = prepare.split(prepare.clean(read_table(image_raw, cfg.data), "image"), cfg)
    leaked = splits["train"].iloc[[0]].assign(path="copied-from-train.png")
    blank = pd.DataFrame({"image": [png(np.full((28, 28), 7, np.uint8))], "label": ["Bag"], "path": ["blank.png"]})
    tiny = pd.DataFrame({"image": [png(np.eye(4, dtype=np.uint8) * 255)], "label": ["Bag"], "path": ["tiny.png"]})
    splits["test"] = pd.concat([splits["test"], leaked, blank, tiny], ignore_index=True)
    report = validate_tables(splits, cfg)
    failed = {c.name: c for c in report.checks if not c.passed}
    assert set(failed) == {"no_train_overlap", "image_not_blank", "image_size"}
    assert all(c.table == "test" for c in failed.values())
    assert "copied-from-train.png" in failed["no_train_overlap"].detail
    assert "blank.png" in failed["image_not_blank"].detail and "tiny.png" in failed["image_size"].detail


def test_the_config_says_the_modality_once(image_shrunk):
    params, _ = image_shrunk
    first = {**params["select"]["candidates"][0], "modality": "image"}  # the old per-candidate field
    with pytest.raises(GraftError, match=r"select\.candidates\.0\.modality: Extra inputs are not permitted"):
        config.from_dict({**params, "select": {**params["select"], "candidates": [first]}})
    with pytest.raises(GraftError, match="data.modality: unknown modality 'audio' \\(known: text, image\\)"):
        modalities.get(config.from_dict({**params, "data": {**params["data"], "modality": "audio"}}).data.modality)


def test_registry_keeps_image_models_under_their_own_name(image_run, image_shrunk):
    _, cfg = image_shrunk
    if not image_run["verdict"]["passed"]:
        pytest.fail("the shrunk image run should pass the lowered gate")
    reg = registry.promote(image_run["onnx"], image_run["splits"], cfg, read_json(image_run["evaluate"]),
                           read_json(image_run["export"]), image_run["verdict"])
    assert reg["model_name"] == "graft-image"
    assert registry.champion(cfg.registry)["version"] == reg["version"]


@pytest.mark.parametrize("mode", ["feature_extraction", "partial"])
def test_the_other_transfer_modes_train_image_backbones(image_run, image_shrunk, tmp_path, mode):
    import torch
    from safetensors.torch import load_file

    from graft import train
    from graft.train import selected_candidate

    params, _ = image_shrunk
    cfg = config.from_dict({**params, "train": {**params["train"], "mode": mode, "unfreeze_top": 2,
                                                "head_learning_rate": 1e-3}})
    splits = read_splits(image_run["splits"])
    cand = selected_candidate(read_json(image_run["select"]), cfg)
    result = train.fit(splits["train"], splits["validation"], cand, cfg, "pretrained", tmp_path / "m")
    assert result["mode"] == mode and result["features_computed"] == (130 if mode == "feature_extraction" else 0)
    trained = load_file(str(tmp_path / "m" / "model.safetensors"))

    start = build(cand, len(cfg.data.labels), "pretrained", 0.0, cfg.train.image_size)[1]
    fresh, last = start.state_dict(), len(start.encoder._blocks) - 1
    frozen = "encoder._conv_stem.weight"  # the stem is frozen in both modes
    assert torch.equal(trained[frozen], fresh[frozen])
    top = next(k for k in trained if k.startswith(f"encoder._blocks.{last}.") and k.endswith("conv.weight"))
    assert torch.equal(trained[top], fresh[top]) == (mode == "feature_extraction")  # partial trains the top block


def test_the_explain_stage_draws_heat_maps_and_measures_them(image_run, image_shrunk):
    _, cfg = image_shrunk
    ex = read_json(image_run["explain"])
    assert ex["modality"] == "image" and ex["rows"]["explained"] == cfg.explain.n
    side = cfg.train.image_size
    for r in ex["examples"]:
        grid = np.asarray(r["attributions"])
        assert grid.shape == (side, side) and np.isfinite(grid).all()  # 32-pixel inputs: one cell per pixel
    for f in ex["faithfulness"].values():  # reported whatever they are; the numbers are in the README
        assert f["items"] == cfg.explain.n and f["completeness"]["share"] is not None
    assert {k for k, e in ex["evidence"].items() if e["count"]} <= set(cfg.data.labels)
    page = image_run["explain_html"].read_text()
    assert page.count("data:image/png;base64,") >= len(ex["examples"]) + 1


def test_graft_explain_refuses_an_image_path_that_is_not_an_image(image_run, tmp_path, capsys):
    from graft.cli import main

    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"{bad}\n")
    assert main(["explain", "--model", str(image_run["finetune"]), "--input", str(listing)]) == 1
    (err,) = said(capsys.readouterr().err)  # one line besides the timestamped start line
    assert f"{listing} line 1: {bad}: not a decodable image" in err


def test_graft_serve_answers_images_over_the_v2_protocol_without_torch(image_run, image_shrunk, tmp_path):
    import base64

    import requests
    import tritonclient.http as triton

    from graft.serve.predict import Package
    from tests.stages.test_serve import Running, params_for

    blobs = read_splits(image_run["splits"])["test"]["image"].head(6).tolist()
    expected = [r["label"] for r in Package(image_run["onnx"]).predict(blobs)]
    srv = Running(str(image_run["onnx"]), params_for(image_shrunk, tmp_path), tmp_path, without_torch=True)
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{srv.port}")
        assert client.get_model_metadata("graft")["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
        inp = triton.InferInput("image", [len(blobs), 1], "BYTES")
        inp.set_data_from_numpy(np.array(blobs, dtype=np.object_).reshape(-1, 1))
        got = [b.decode() for b in client.infer("graft", [inp]).as_numpy("label")]
        assert got == expected
        client.close()
        body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2],
                            "data": [base64.b64encode(blobs[0]).decode(), base64.b64encode(b"GIF89a junk").decode()]}]}
        r = requests.post(f"{srv.url}/v2/models/graft/infer", json=body, timeout=30)
        assert r.status_code == 400 and "element 1" in r.json()["error"] and "decode" in r.json()["error"]
        body["inputs"][0].update(shape=[1], data=body["inputs"][0]["data"][:1])
        r = requests.post(f"{srv.url}/v2/models/graft/infer", json=body, timeout=30)
        assert r.status_code == 200 and r.json()["outputs"][2]["data"] == expected[:1]
    finally:
        srv.stop()
