"""Config sections of evaluation, export, the gate, the registry, the cluster and the experiments."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from graft.core.config.base import Section


class EvaluateConfig(Section):
    """Evaluation settings."""

    batch_size: int = Field(64, ge=1)
    bootstrap_resamples: int = Field(
        1000, ge=100, description="Paired-bootstrap resamples behind each confidence interval (seeded).")


class ExportConfig(Section):
    """ONNX export settings."""

    opset: int = Field(17, ge=13)
    batch_size: int = Field(64, ge=1, description="Batch size of the parity run on the test split.")


class ExplainConfig(Section):
    """The explain stage: integrated-gradients attributions of a test sample, and how faithful they are."""

    n: int = Field(100, ge=10, description="Test rows explained (seeded, stratified by label, misclassified first "
                   "up to a quarter); also the items of the deletion test.")
    steps: int = Field(20, ge=4, description="Integrated-gradients steps (Gauss-Legendre) per input; the "
                       "completeness share says whether they suffice.")
    seed: int | None = Field(None, description="Seed of the sample and of the random deletions (null: the "
                             "top-level seed).")
    fraction: float = Field(0.2, gt=0, lt=1, description="Share of units (words, pixels) the deletion test removes.")
    completeness_bound: float = Field(0.05, gt=0, description="|convergence delta| an item must stay within "
                                      "(probability units) to count as complete.")
    batch_size: int = Field(4, ge=1, description="Inputs per attribution batch (times `steps` forward passes).")
    scratch: bool = Field(True, description="Explain the scratch model too, as the faithfulness anchor.")
    scratch_n: int | None = Field(50, ge=10, description="The anchor explains this many of the n rows (a seeded "
                                  "subset; null: all n).")
    shortcut_share: float = Field(0.1, gt=0, le=1, description="A kind of artefact (URL pieces, @handles, markup; "
                                  "image borders) holding at least this share of a class's positive attribution "
                                  "is flagged as a possible shortcut in the report and the model card.")
    examples: int = Field(8, ge=0, description="Inputs shown in the reports (misclassified first).")


class ServeConfig(Section):
    """`graft serve`: the Open Inference Protocol (KServe V2) server over an exported package."""

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container).")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port.")
    model_name: str | None = Field(
        None, description="The name clients call it by (null: the registry model's name, NAME of "
        "models:/NAME@ALIAS or registry.model_name for a folder); `graft` is answered too.")
    max_batch: int = Field(32, ge=1, description="Dynamic batching: concurrent requests merge into one ONNX "
                           "Runtime call of at most this many inputs.")
    max_delay_ms: float = Field(2.0, ge=0, description="How long the first request of a batch waits for others "
                                "to join it (0: batch only what is already queued).")
    max_body_mb: float = Field(8.0, gt=0, description="Largest request body; larger is a 413.")
    max_inputs: int = Field(256, ge=1, description="Most inputs (texts, images) in one request; more is a 413.")
    max_text_bytes: int = Field(8192, ge=1, description="Longest text input (UTF-8 bytes); longer is a 413.")
    max_image_bytes: int = Field(2_000_000, ge=1, description="Largest encoded image input; larger is a 413.")
    poll_seconds: float = Field(30.0, gt=0, description="Serving a registry alias: how often to check whether it "
                                "moved (the new version is loaded, probed and swapped in).")
    read_timeout_s: float = Field(10.0, gt=0, description="A request body that stalls this long between two chunks "
                                  "is answered 408 and its connection closed.")
    max_connections: int = Field(256, ge=1, description="Most connections and requests in progress at once; "
                                 "beyond it the server answers 503 (Service Unavailable) at once.")
    auth_token_file: str | None = Field(
        None, description="A file holding a bearer token: infer and metadata then need `Authorization: Bearer "
        "TOKEN` (health and /metrics stay open for probes). The GRAFT_SERVE_TOKEN environment variable wins.")
    last_good_dir: str | None = Field(
        None, description="Serving a registry alias: where the last version that served well is kept (with its "
        "digest), to start from when the alias points at a version that cannot load or the registry is down. "
        "null: graft-serve-last-good/<model name> in the temporary folder; on Kubernetes, a volume.")
    replicas: int = Field(2, ge=1, description="infra/k8s/serving: the Deployment's pods, and the "
                          "InferenceService's minimum.")
    max_replicas: int = Field(4, ge=1, description="infra/k8s/serving: KServe autoscales up to this many pods.")
    resources: TaskResources = Field(
        default_factory=lambda: TaskResources(cpu_request="1", cpu_limit="2", memory_request="1Gi",
                                              memory_limit="2Gi"),
        description="Kubernetes requests and limits of one serving pod (infra/k8s/serving).")

    @model_validator(mode="after")
    def _replicas(self):
        if self.max_replicas < self.replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is below replicas ({self.replicas})")
        return self


class DomainFloor(Section):
    """The quality floor of one domain (source or target) for the model the gate judges."""

    min_macro_f1: float | None = Field(None, ge=0, le=1, description="Floor on its macro-F1 in this domain.")
    max_regression: float | None = Field(
        None, ge=0, description="The adapted model's macro-F1 may fall at most this far below the source-only "
        "model's in this domain (point estimate): what adaptation may cost there.")


class GateConfig(Section):
    """The promotion policy."""

    min_macro_f1: float = Field(0.8, ge=0, le=1, description="Floor on the fine-tuned test macro-F1.")
    min_transfer_margin: float = Field(
        0.02, description="The lower 95% bound of fine-tuned minus the best no-transfer model's macro-F1 (scratch or "
        "the classical baseline, whichever scores higher) must reach this (transfer benefit); an upper bound below "
        "zero is a NEGATIVE TRANSFER verdict.")
    max_regression: float = Field(
        0.01, ge=0, description="The lower 95% bound of candidate minus champion macro-F1 may go down to minus this "
        "(non-regression), both re-scored on the current test split.")
    first_run: Literal["promote", "refuse"] = Field(
        "promote", description="With no champion yet: promote when every other check passes, or refuse (a person "
        "promotes the first model).")
    min_onnx_agreement: float = Field(0.999, ge=0, le=1, description="fp32 ONNX vs PyTorch label agreement.")
    max_onnx_logit_diff: float = Field(1e-4, gt=0, description="Largest |logit| difference, fp32 ONNX vs PyTorch.")
    max_onnx_accuracy_delta_pt: float = Field(
        0.1, ge=0, description="fp32 ONNX test accuracy within this many points of PyTorch's.")
    max_int8_accuracy_drop_pt: float = Field(
        0.5, ge=0, description="int8 ONNX test accuracy at most this many points below the fp32 ONNX model's.")
    min_adaptation_margin: float = Field(
        0.0, description="The adapted model goes on only when the lower 95% bound of adapted minus source-only "
        "macro-F1 on the labeled target test reaches this (adaptation_benefit); otherwise the source-only model "
        "does, and the verdict says why.")
    unproven_adaptation: Literal["source_only", "refuse"] = Field(
        "source_only", description="train.adapt without a labeled target test (data.target.test) cannot be proven: "
        "source_only promotes the source-only model instead, refuse refuses the run.")
    domains: dict[Literal["source", "target"], DomainFloor] = Field(
        default_factory=dict, description="Per-domain floors (source, target) for the judged model: a model that "
        "wins on average but collapses on one domain is refused.")
    min_explanation_faithfulness: float | None = Field(
        None, gt=0, description="Floor on the lower 95% bound of the deletion ratio (top-attributed units removed "
        "vs random ones: how much more the probability drops); null: reported, not gated.")
    serve: Literal["fp32", "int8"] = Field("fp32", description="The ONNX model you deploy: the budgets apply to it.")
    infra_validate: bool = Field(
        True, description="Infra-validation: start the candidate with `graft serve` on a loopback port, send it "
        "infra_rows test rows over the V2 protocol; every answer must agree with `graft predict` and the request "
        "p95 meet max_latency_ms_p95, or nothing is registered (false: skip it).")
    approval: Literal["auto", "required"] = Field(
        "auto", description="auto: a passing candidate becomes the champion. required: it gets the alias challenger "
        "and a person decides (`graft approve --version N --by NAME --note TEXT`, or `graft reject`).")
    infra_rows: int = Field(50, ge=1, description="Test rows infra-validation sends, one request each (seeded).")
    infra_timeout_s: float = Field(60.0, gt=0, description="How long the server may take to become ready.")
    max_model_mb: float | None = Field(None, gt=0, description="Size budget of the served ONNX model file (MB).")
    max_latency_ms_p95: float | None = Field(
        None, gt=0, description="Latency budget (ms): p95 of one ONNX Runtime call at batch 1 on real test rows, "
        "measured by `export` on the machine that ran it, and p95 of one request to `graft serve` as a client sees "
        "it, measured by infra-validation (null: no latency check).")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data):
        if isinstance(data, dict) and "min_margin_over_scratch" in data:
            raise ValueError("min_margin_over_scratch is now min_transfer_margin: the margin applies to the best model "
                             "without transfer (scratch or the classical baseline), not to scratch alone")
        return data


class TaskResources(Section):
    """Kubernetes requests and limits of one pipeline task (quantities as in a pod spec)."""

    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "2G"
    memory_limit: str = "6G"


class Toleration(Section):
    """A pod toleration (as in a pod spec)."""

    key: str
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class KubeflowConfig(Section):
    """How the compiled pipeline runs on a cluster; read when compiling (`make kfp-compile`), not by kfp.local."""

    resources: dict[str, TaskResources] = Field(
        {"default": TaskResources(), "train": TaskResources(cpu_request="2", cpu_limit="8", memory_request="6G",
                                                            memory_limit="12G")},
        description="Per task name; `default` for the others.")
    gpu_for_training: bool = Field(False, description="Give the tasks that backpropagate (train, baseline, adapt, "
                                   "selfcheck, explain) one accelerator each.")
    accelerator_type: str = Field("nvidia.com/gpu", description="The accelerator resource of gpu_for_training.")
    cache_pvc: str | None = Field("graft-cache", description="PVC mounted on every task (infra/k8s/pvc.yaml): "
                                  "point data.raw, validate.profile_dir and select.feature_cache into it.")
    cache_mount: str = Field("/mnt/graft", description="Where cache_pvc is mounted.")
    mlflow_secret: str | None = Field("graft-mlflow", description="Secret whose keys (MLFLOW_TRACKING_URI, "
                                      "credentials) become environment variables of the tasks that use MLflow.")
    node_selector: dict[str, str] = Field({}, description="Node labels every task must match.")
    tolerations: list[Toleration] = Field([], description="Taints every task tolerates.")


class RegistryConfig(Section):
    """Where promoted models go (MLflow model registry)."""

    tracking_uri: str = Field(
        "sqlite:///mlflow.db", description="MLflow tracking URI; the MLFLOW_TRACKING_URI env variable wins."
    )
    artifact_location: str = Field("mlartifacts", description="Artifact root for a new experiment.")
    experiment: str = Field("graft")
    model_name: str = Field("graft-text")
    alias: str = Field("champion")
    timeout_s: float = Field(10.0, gt=0, description="Each registry request times out after this many seconds "
                             "(an HTTP tracking server; a SQLite file answers or fails at once).")
    retries: int = Field(3, ge=0, description="Retries of a failed registry call, with exponential backoff, before "
                         "the stage stops with an error naming the tracking URI (an outage is never 'no champion').")


class CurveConfig(Section):
    """The data-efficiency experiment: pretrained and scratch trained at several training-set sizes."""

    sizes: list[int] = Field([50, 100, 200, 500, 1000, 2000], min_length=1,
                             description="Labeled training examples per point (nested: each set holds the smaller).")

    @field_validator("sizes")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(n < 2 for n in v):
            raise ValueError("every size needs at least 2 examples")
        return v


class MultitaskConfig(Section):
    """The multi-task demo (`graft multitask`): 20 Newsgroups, newsgroup and top-level hierarchy as two tasks."""

    backbone: str = Field("minilm-l6-first3", description="A select.candidates name.")
    train_size: int = Field(1000, ge=20)
    validation_size: int = Field(250, ge=20)
    test_size: int = Field(1000, ge=20)
    max_length: int = Field(128, ge=8, description="Tokens per post (they are long).")
    epochs: int = Field(4, ge=1)
    weights: dict[str, float] = Field({"newsgroup": 1.0, "topic": 0.5},
                                      description="Loss weight per task in the multi-task run.")
