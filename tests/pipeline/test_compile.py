"""The compiled KFP YAML: regenerated from the code, identical to the committed file, strictly parseable."""

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipelines.__main__ import DEFAULT_YAML, compile_yaml
from tests.shrink import ROOT


def test_committed_yaml_matches_the_code(tmp_path):
    # Compared as data: KFP's header comment prints the default config in protobuf map order, which varies.
    fresh = yaml.safe_load(compile_yaml(str(ROOT / "params.yaml"), tmp_path / "p.yaml").read_text())
    assert fresh == yaml.safe_load(DEFAULT_YAML.read_text()), "pipelines/compiled is stale: run `make kfp-compile`"


def test_yaml_parses_strictly_into_pipeline_spec():
    spec = json_format.ParseDict(yaml.safe_load(DEFAULT_YAML.read_text()), pipeline_spec_pb2.PipelineSpec(),
                                 ignore_unknown_fields=False)
    tasks = spec.root.dag.tasks
    assert set(tasks) >= {"prepare", "validate", "select", "train", "baseline", "evaluate", "export", "gate"}
    condition = [t for t in tasks.values() if t.trigger_policy.condition]
    assert len(condition) == 1 and "gate" in condition[0].trigger_policy.condition
    assert spec.root.input_definitions.parameters["config"].default_value.struct_value["data"]["labels"]


def test_yaml_loads_back_as_a_kfp_component():
    from kfp import components

    loaded = components.load_component_from_file(str(DEFAULT_YAML))
    assert loaded.name == "graft-transfer"


def test_ui_outputs_carry_their_kfp_artifact_types():
    spec = json_format.ParseDict(yaml.safe_load(DEFAULT_YAML.read_text()), pipeline_spec_pb2.PipelineSpec())

    def kind(task: str, output: str) -> str:
        outputs = spec.components[f"comp-{task}"].output_definitions.artifacts
        return outputs[output].artifact_type.schema_title

    assert kind("evaluate", "confusion") == "system.ClassificationMetrics"
    assert kind("evaluate", "evaluation") == kind("gate", "verdict") == "system.Metrics"
    assert kind("select", "ranking") == kind("gate", "table") == "system.Markdown"
    assert kind("validate", "docs") == kind("report", "page") == "system.HTML"
