"""The graft DAG as a KFP v2 pipeline factory: wiring and the promotion condition only, no ML logic."""

from kfp import dsl

from components.baseline.component import baseline
from components.evaluate.component import evaluate
from components.export.component import export
from components.gate.component import gate
from components.prepare.component import prepare
from components.register.component import register
from components.report.component import report
from components.select.component import select
from components.selfcheck.component import selfcheck
from components.train.component import train
from components.validate.component import validate

PIPELINE_NAME = "graft-transfer"


def create_pipeline(default_config: dict):
    """Return the pipeline function; `default_config` (params.yaml as a mapping) becomes its default `config`."""

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Validate data, select a backbone, fine-tune it, a scratch baseline and selection's "
                    "runners-up, evaluate, export to ONNX, and register the model only if the gate passes.",
    )
    def graft_pipeline(config: dict = default_config, source: str = ""):
        prep = prepare(config=config, source=source)
        splits = prep.outputs["splits"]
        checked = validate(config=config, splits=splits)
        chosen = select(config=config, splits=splits).after(checked)
        finetuned = train(config=config, splits=splits, selection=chosen.outputs["selection"])
        scratch = baseline(config=config, splits=splits, selection=chosen.outputs["selection"])
        audit = selfcheck(config=config, splits=splits, selection=chosen.outputs["selection"])
        scored = evaluate(config=config, splits=splits, finetune=finetuned.outputs["model"],
                          scratch=scratch.outputs["model"], selection=chosen.outputs["selection"],
                          selfcheck=audit.outputs["models"])
        exported = export(config=config, model=finetuned.outputs["model"], splits=splits)
        verdict = gate(config=config, splits=splits, evaluation=scored.outputs["evaluation"],
                       parity=exported.outputs["parity"], package=exported.outputs["package"])
        report(config=config, splits=splits, validation=checked.outputs["report"],
               selection=chosen.outputs["selection"], trained=finetuned.outputs["metrics"],
               baseline=scratch.outputs["metrics"],
               evaluation=scored.outputs["evaluation"], parity=exported.outputs["parity"],
               verdict=verdict.outputs["verdict"])
        # A single bool return (not a NamedTuple): kfp.local resolves conditions on `<task>-Output` channels.
        with dsl.If(verdict.outputs["Output"] == True, name="promote"):  # noqa: E712 (KFP condition syntax)
            register(config=config, package=exported.outputs["package"], splits=splits,
                     evaluation=scored.outputs["evaluation"], parity=exported.outputs["parity"],
                     verdict=verdict.outputs["verdict"])

    return graft_pipeline


