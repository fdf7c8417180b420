"""infra/k8s/serving from params.yaml: `graft serve` as a KServe InferenceService and as a plain Deployment + Service.

Both run the same pod: the graft image running `graft serve` against the registry alias (`registry.model_name` @
`registry.alias`), params.yaml mounted from the graft-params ConfigMap, the MLflow credentials from the graft-mlflow
Secret, the V2 health endpoints as startup, readiness and liveness probes, a restricted pod (non-root, no
privilege escalation, read-only root, every capability dropped, RuntimeDefault seccomp) and the `serve` section's
replicas and resources. `make kfp-compile` writes them; a test fails when they are stale.
"""

from pathlib import Path

import yaml
from graft_kfp.components import BASE_IMAGE

FOLDER = Path(__file__).parent.parent / "infra" / "k8s" / "serving"
PORT = 8080  # inside the pod; the Service maps port 80 to it
COMPONENT = {"app.kubernetes.io/component": "serving"}
HEADER = ("# Generated from params.yaml (serve, registry) by `make kfp-compile`: edit those, not this file\n"
          "# (a test fails when it is stale).\n")


def pod(cfg, container_name: str, image: str) -> dict:
    """The pod spec both manifests share (KServe inlines it in the predictor; the Deployment in its template)."""
    res = cfg.serve.resources
    model = f"models:/{cfg.registry.model_name}@{cfg.registry.alias}"
    probe = {"path": "/v2/health/ready", "port": PORT}
    return {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": container_name,
            "image": image,  # the Deployment's "graft" is rewritten by infra/k8s/serving/kustomization.yaml
            "imagePullPolicy": "IfNotPresent",
            "command": ["graft", "serve", "--model", model, "--params", "/etc/graft/params.yaml",
                        "--host", "0.0.0.0", "--port", str(PORT)],
            "envFrom": [{"secretRef": {"name": "graft-mlflow"}}],
            "env": [{"name": "HOME", "value": "/tmp"}],
            "ports": [{"name": "http1", "containerPort": PORT, "protocol": "TCP"}],
            "startupProbe": {"httpGet": dict(probe), "periodSeconds": 2, "failureThreshold": 60},
            "readinessProbe": {"httpGet": dict(probe), "periodSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {"httpGet": {**probe, "path": "/v2/health/live"}, "periodSeconds": 10,
                              "failureThreshold": 3},
            "resources": {"requests": {"cpu": res.cpu_request, "memory": res.memory_request},
                          "limits": {"cpu": res.cpu_limit, "memory": res.memory_limit}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "params", "mountPath": "/etc/graft", "readOnly": True},
                             {"name": "tmp", "mountPath": "/tmp"}],  # the registry download lands under /tmp
        }],
        "volumes": [{"name": "params", "configMap": {"name": "graft-params"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }


PROMETHEUS = {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT), "prometheus.io/path": "/metrics"}


def inference_service(cfg) -> dict:
    """A KServe v1beta1 InferenceService with a custom predictor (KServe names its container kserve-container).

    Its image is the full name `make image` builds (kustomize's image rewrite does not reach custom resources):
    point it at the one you pushed.
    """
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": cfg.registry.model_name, "labels": dict(COMPONENT),
                     "annotations": {"serving.kserve.io/enable-prometheus-scraping": "true",
                                     "prometheus.kserve.io/port": str(PORT), "prometheus.kserve.io/path": "/metrics"}},
        "spec": {"predictor": {"minReplicas": cfg.serve.replicas, "maxReplicas": cfg.serve.max_replicas,
                               **pod(cfg, "kserve-container", BASE_IMAGE)}},
    }


def deployment(cfg) -> list[dict]:
    """The same pod as a Deployment of serve.replicas pods (rolling, never below that) and its Service."""
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "graft-serve", "labels": dict(COMPONENT)},
         "spec": {"replicas": cfg.serve.replicas, "selector": {"matchLabels": dict(COMPONENT)},
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                  "template": {"metadata": {"labels": dict(COMPONENT), "annotations": dict(PROMETHEUS)},
                               "spec": pod(cfg, "serve", "graft")}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "graft-serve", "labels": dict(COMPONENT)},
         "spec": {"selector": dict(COMPONENT),
                  "ports": [{"name": "http", "port": 80, "targetPort": "http1", "protocol": "TCP"}]}},
    ]


def write(params: str, folder: Path = FOLDER) -> list[Path]:
    """Write inferenceservice.yaml and deployment.yaml for params.yaml into `folder`; return their paths."""
    from graft.core import config

    cfg = config.load(params)
    folder.mkdir(parents=True, exist_ok=True)
    docs = {"inferenceservice.yaml": ("# graft serve on KServe (installed): after `kubectl apply -k infra/k8s`,\n"
                                      "# `kubectl apply -n graft -f infra/k8s/serving/inferenceservice.yaml`.\n",
                                      [inference_service(cfg)]),
            "deployment.yaml": ("# graft serve without KServe: `kubectl apply -k infra/k8s/serving` (a Deployment\n"
                                "# and its Service, after `kubectl apply -k infra/k8s`).\n", deployment(cfg))}
    out = []
    for name, (about, content) in docs.items():
        path = folder / name
        path.write_text(HEADER + about + yaml.safe_dump_all(content, sort_keys=False, width=120))
        out.append(path)
    return out
