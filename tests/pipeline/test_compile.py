"""The compiled KFP YAML: regenerated from the code, identical to the committed file, strictly parseable."""

import yaml
from google.protobuf import json_format
from graft_kfp.pipelines.__main__ import DEFAULT_YAML, compile_yaml
from kfp.pipeline_spec import pipeline_spec_pb2

from tests.shrink import ROOT


def documents() -> list[dict]:
    """The compiled file: the PipelineSpec, then the Kubernetes PlatformSpec (kfp-kubernetes settings)."""
    return list(yaml.safe_load_all(DEFAULT_YAML.read_text()))


def test_committed_yaml_matches_the_code(tmp_path):
    # Compared as data: KFP's header comment prints the default config in protobuf map order, which varies.
    fresh = list(yaml.safe_load_all(compile_yaml(str(ROOT / "params.yaml"), tmp_path / "p.yaml").read_text()))
    assert fresh == documents(), "pipelines/compiled is stale: run `make kfp-compile`"


def test_yaml_parses_strictly_into_pipeline_spec():
    spec = json_format.ParseDict(documents()[0], pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    tasks = spec.root.dag.tasks
    assert set(tasks) == {"freshness", "condition-1"}  # everything else waits for new data
    inner = spec.components["comp-condition-1"].dag.tasks
    assert set(inner) >= {"prepare", "validate", "select", "train", "baseline", "evaluate", "export", "gate", "report"}
    assert "freshness" in tasks["condition-1"].trigger_policy.condition
    assert "gate" in inner["condition-2"].trigger_policy.condition
    assert spec.root.input_definitions.parameters["config"].default_value.struct_value["data"]["labels"]


def test_yaml_loads_back_as_a_kfp_component():
    from kfp import components

    loaded = components.load_component_from_file(str(DEFAULT_YAML))
    assert loaded.name == "graft-transfer"


def test_ui_outputs_carry_their_kfp_artifact_types():
    spec = json_format.ParseDict(documents()[0], pipeline_spec_pb2.PipelineSpec())

    def kind(task: str, output: str) -> str:
        outputs = spec.components[f"comp-{task}"].output_definitions.artifacts
        return outputs[output].artifact_type.schema_title

    assert kind("evaluate", "confusion") == "system.ClassificationMetrics"
    assert kind("evaluate", "evaluation") == kind("gate", "verdict") == "system.Metrics"
    assert kind("select", "ranking") == kind("gate", "table") == "system.Markdown"
    assert kind("validate", "docs") == kind("report", "page") == "system.HTML"


def test_cluster_settings_resources_accelerator_pvc_secret_and_image():
    from kfp.pipeline_spec import pipeline_spec_pb2 as pb

    spec, platform = documents()
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"localhost/graft:0.1.0"}
    train = executors["exec-train"]["container"]["resources"]
    assert (train["resourceCpuLimit"], train["resourceMemoryLimit"]) == ("8", "12G")
    assert executors["exec-gate"]["container"]["resources"]["resourceMemoryLimit"] == "6G"
    assert all("pip install" not in " ".join(e["container"]["command"]) for e in executors.values())
    strict = json_format.ParseDict(platform, pb.PlatformSpec(), ignore_unknown_fields=False)
    kube = json_format.MessageToDict(strict.platforms["kubernetes"])["deploymentSpec"]["executors"]
    assert all(k["pvcMount"][0]["mountPath"] == "/mnt/graft" for k in kube.values()) and len(kube) == 14
    with_secret = {name for name, k in kube.items() if "secretAsEnv" in k}
    assert with_secret == {"exec-freshness", "exec-evaluate", "exec-gate", "exec-register"}


def test_compile_can_point_every_task_at_a_pushed_image(tmp_path):
    out = compile_yaml(str(ROOT / "params.yaml"), tmp_path / "p.yaml", image="registry.example/ml/graft:1.2")
    spec = next(yaml.safe_load_all(out.read_text()))
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {
        "registry.example/ml/graft:1.2"}
