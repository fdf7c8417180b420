"""Fast tests of the components: each component's Python function called directly with stand-in artifacts.

`kfp.local` (tests/pipeline/test_kfp_local.py) runs them as tasks; here `component.python_func(...)` runs in the test
process, on the shrunk config, with `dsl.Dataset`/`Model`/... artifacts whose URIs are folders of a temp directory.
A component's inputs are the outputs of its upstream components, each run once per session on first use.
"""

import functools
from types import SimpleNamespace

import pytest
from kfp import dsl

from graft.core import config


class Chain:
    """The components in pipeline order; each property runs one component's function once and keeps its outputs."""

    def __init__(self, root, cfg: dict):
        self.root, self.config = root, cfg

    def artifact(self, kind, name: str):
        """A stand-in for an artifact KFP would hand the function: a local URI, empty metadata."""
        return kind(name=name, uri=str(self.root / name), metadata={})

    def call(self, component, prefix: str = "", **artifacts):
        """Run `component`'s function with fresh output artifacts named `{prefix or component}-{name}`."""
        kinds = artifacts.pop("outputs")
        outs = {name: self.artifact(kind, f"{prefix or component.name}-{name}") for name, kind in kinds.items()}
        value = component.python_func(config=self.config, **artifacts, **outs)
        return SimpleNamespace(value=value, **outs)

    @functools.cached_property
    def freshness(self):
        """Is there anything new since the champion (none yet: retrain)?"""
        from graft_kfp.components.freshness.component import freshness
        return self.call(freshness, source="", outputs={"decision": dsl.Metrics})

    @functools.cached_property
    def prepare(self):
        """The splits, keyed by the data md5."""
        from graft_kfp.components.prepare.component import prepare
        return self.call(prepare, source="", data_md5=self.freshness.value, outputs={"splits": dsl.Dataset})

    @functools.cached_property
    def validate(self):
        """The checks of the splits."""
        from graft_kfp.components.validate.component import validate
        return self.call(validate, splits=self.prepare.splits, outputs={"report": dsl.Metrics, "docs": dsl.HTML})

    @functools.cached_property
    def select(self):
        """The ranking and the selected backbone."""
        from graft_kfp.components.select.component import select
        self.validate  # nothing is selected on data that was not validated  # noqa: B018
        return self.call(select, splits=self.prepare.splits,
                         outputs={"selection": dsl.Artifact, "ranking": dsl.Markdown})

    def _trained(self, component):
        return self.call(component, splits=self.prepare.splits, selection=self.select.selection,
                         outputs={"model": dsl.Model, "metrics": dsl.Metrics})

    @functools.cached_property
    def train(self):
        """The fine-tuned model."""
        from graft_kfp.components.train.component import train
        return self._trained(train)

    @functools.cached_property
    def baseline(self):
        """The same architecture from random weights."""
        from graft_kfp.components.baseline.component import baseline
        return self._trained(baseline)

    @functools.cached_property
    def adapt(self):
        """The adapted model (train.adapt on data.target's pool)."""
        from graft_kfp.components.adapt.component import adapt
        return self._trained(adapt)

    @functools.cached_property
    def selfcheck(self):
        """The runners-up, fine-tuned."""
        from graft_kfp.components.selfcheck.component import selfcheck
        return self.call(selfcheck, splits=self.prepare.splits, selection=self.select.selection,
                         outputs={"models": dsl.Model, "metrics": dsl.Metrics})

    @functools.cached_property
    def evaluate(self):
        """Both models scored, the selection audited."""
        from graft_kfp.components.evaluate.component import evaluate
        return self.call(evaluate, splits=self.prepare.splits, finetune=self.train.model,
                         scratch=self.baseline.model, adapted=self.adapt.model, selection=self.select.selection,
                         selfcheck=self.selfcheck.models,
                         outputs={"evaluation": dsl.Metrics, "confusion": dsl.ClassificationMetrics})

    @functools.cached_property
    def explain(self):
        """The chosen model's attributions of a test sample, and their faithfulness."""
        from graft_kfp.components.explain.component import explain
        return self.call(explain, splits=self.prepare.splits, finetune=self.train.model,
                         scratch=self.baseline.model, adapted=self.adapt.model, evaluation=self.evaluate.evaluation,
                         outputs={"explanation": dsl.Metrics, "page": dsl.HTML})

    @functools.cached_property
    def export(self):
        """The ONNX package and its parity."""
        from graft_kfp.components.export.component import export
        return self.call(export, model=self.train.model, adapted=self.adapt.model,
                         evaluation=self.evaluate.evaluation, splits=self.prepare.splits,
                         outputs={"package": dsl.Model, "parity": dsl.Metrics})

    @functools.cached_property
    def gate(self):
        """The verdict (the shrunk config passes)."""
        from graft_kfp.components.gate.component import gate
        return self.call(gate, splits=self.prepare.splits, evaluation=self.evaluate.evaluation,
                         parity=self.export.parity, package=self.export.package, explanation=self.explain.explanation,
                         outputs={"verdict": dsl.Metrics, "table": dsl.Markdown})

    @functools.cached_property
    def register(self):
        """The new model version."""
        from graft_kfp.components.register.component import register
        assert self.gate.value, "the shrunk config's gate passes: register runs under dsl.If(passed)"
        return self.call(register, package=self.export.package, splits=self.prepare.splits,
                         evaluation=self.evaluate.evaluation, parity=self.export.parity, verdict=self.gate.verdict,
                         explanation=self.explain.explanation, page=self.explain.page, outputs={})

    @functools.cached_property
    def report(self):
        """The run's HTML page."""
        from graft_kfp.components.report.component import report
        return self.call(report, splits=self.prepare.splits, validation=self.validate.report,
                         selection=self.select.selection, trained=self.train.metrics,
                         baseline=self.baseline.metrics, evaluation=self.evaluate.evaluation,
                         parity=self.export.parity, verdict=self.gate.verdict,
                         explanation=self.explain.explanation, outputs={"page": dsl.HTML})


@pytest.fixture(scope="session")
def chain(tmp_path_factory, raw_file, target_files):
    """The components of one pipeline run, called directly, on the shrunk config with its own registry.

    It has a target domain (September tweets) and adapts to it by self-training: the adaptation path.
    """
    from tests.shrink import shrunk_params, with_target

    root = tmp_path_factory.mktemp("components")
    params = with_target(shrunk_params(root), target_files)
    params["data"]["raw"] = str(raw_file)
    return Chain(root, config.from_dict(params).to_dict())
