"""infra/k8s: every manifest passes strict schema validation, the pods are locked down, the params are fresh."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from graft_kfp.pipelines.__main__ import DEFAULT_CONFIGMAP, params_configmap

from tests.shrink import ROOT

K8S = ROOT / "infra" / "k8s"
KUBERNETES = "1.35.0"  # a current release; kubernetes-validate ships its schemas, so this runs offline
VALIDATE = str(Path(sys.executable).with_name("kubernetes-validate"))


def manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_every_manifest_passes_strict_validation():
    res = subprocess.run([VALIDATE, "--strict", "-k", KUBERNETES, *map(str, manifests())], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    resources = sum(len(documents(p)) for p in manifests())
    assert res.stdout.count(" passed for resource ") == resources >= 7


def test_strict_validation_rejects_an_unknown_field(tmp_path):
    cron = documents(K8S / "cronjob.yaml")[0]
    cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(cron))
    res = subprocess.run([VALIDATE, "--strict", "-k", KUBERNETES, str(tmp_path / "typo.yaml")], capture_output=True,
                         text=True)
    assert res.returncode != 0 and "securityContxt" in res.stdout + res.stderr


def test_the_kustomization_lists_every_manifest_and_only_those():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in manifests())
    assert kustomization["namespace"] == "graft"


@pytest.mark.parametrize("path", ["cronjob.yaml"])
def test_pods_run_locked_down_with_limits(path):
    pod = documents(K8S / path)[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(c["resources"]["limits"])


def test_the_role_grants_one_read_and_nothing_else():
    role = next(d for d in documents(K8S / "role.yaml") if d["kind"] == "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["graft-params"],
                              "verbs": ["get"]}]


def test_the_params_configmap_is_generated_from_params_yaml(tmp_path):
    fresh = params_configmap(str(ROOT / "params.yaml"), tmp_path / "cm.yaml").read_text()
    assert fresh == DEFAULT_CONFIGMAP.read_text(), "infra/k8s/configmap-params.yaml is stale: run `make kfp-compile`"
    inside = yaml.safe_load(documents(DEFAULT_CONFIGMAP)[0]["data"]["params.yaml"])
    assert inside == yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_pytorchjob_matches_the_training_sdk_model_and_its_pods_are_valid():
    """kubernetes-validate only warns on custom resources: the PyTorchJob is checked against kubeflow-training."""
    import json

    import kubernetes_validate
    from kubeflow.training.api_client import ApiClient

    api = ApiClient()

    def round_trip(doc: dict) -> dict:  # unknown or mistyped fields do not survive the SDK's model
        return api.sanitize_for_serialization(api._ApiClient__deserialize(doc, "KubeflowOrgV1PyTorchJob"))

    job = documents(ROOT / "infra" / "kubeflow" / "pytorchjob.yaml")[0]
    assert round_trip(job) == json.loads(json.dumps(job))
    typo = json.loads(json.dumps(job))
    typo["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    assert round_trip(typo) != typo  # an unknown field is dropped by the model, so the job would differ
    typo["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "two"
    with pytest.raises(ValueError):
        round_trip(typo)
    for role, replica in job["spec"]["pytorchReplicaSpecs"].items():
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"graft-{role.lower()}"},
               "spec": replica["template"]["spec"]}
        kubernetes_validate.validate(pod, KUBERNETES, strict=True)
        container = pod["spec"]["containers"][0]
        assert container["command"][:2] == ["graft", "train"] and container["securityContext"]["capabilities"] == {
            "drop": ["ALL"]}


def _serving_container(pod: dict) -> dict:
    (c,) = pod["containers"]
    assert c["command"][:4] == ["graft", "serve", "--model", "models:/graft-text@champion"]
    assert c["command"][c["command"].index("--host") + 1] == "0.0.0.0"
    port = int(c["command"][c["command"].index("--port") + 1])
    assert c["ports"][0]["containerPort"] == port
    assert c["readinessProbe"]["httpGet"] == c["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": port}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]  # the registry download lands under /tmp
    return c


def test_the_serving_deployment_validates_and_probes_the_v2_health_endpoints():
    path = K8S / "serving" / "deployment.yaml"
    res = subprocess.run([VALIDATE, "--strict", "-k", KUBERNETES, str(path)], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.count(" passed for resource ") == 2, res.stdout + res.stderr
    deployment, service = documents(path)
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    c = _serving_container(deployment["spec"]["template"]["spec"])
    assert service["spec"]["ports"][0]["targetPort"] == c["ports"][0]["name"]
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    kustomization = yaml.safe_load((K8S / "serving" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["deployment.yaml"]


KSERVE_PYTHON = ROOT / ".venv-kserve" / "bin" / "python"


def _kserve_round_trip(docs: list[dict]) -> list[dict]:
    """The documents through the kserve SDK's V1beta1InferenceService model (in .venv-kserve: `make kserve-env`)."""
    res = subprocess.run([str(KSERVE_PYTHON), str(ROOT / "tests" / "pipeline" / "kserve_roundtrip.py")],
                         input=yaml.safe_dump_all(docs), capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def test_the_inferenceservice_matches_the_kserve_sdk_model_and_its_pod_is_valid():
    """kubernetes-validate does not know KServe's CRD: the InferenceService is checked against the kserve SDK."""
    import kubernetes_validate

    (isvc,) = documents(K8S / "serving" / "inferenceservice.yaml")
    typo = copy.deepcopy(isvc)
    typo["spec"]["predictor"]["containers"][0]["securityContxt"] = {}
    mistyped = copy.deepcopy(isvc)
    mistyped["spec"]["predictor"]["minReplicas"] = "two"
    same, dropped, refused = _kserve_round_trip([isvc, typo, mistyped])
    assert same == json.loads(json.dumps(isvc))
    assert dropped != typo and "securityContxt" not in json.dumps(dropped)  # an unknown field does not survive
    assert "error" in refused and "two" in refused["error"]
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = dict(isvc["spec"]["predictor"])
    replicas = predictor.pop("minReplicas"), predictor.pop("maxReplicas")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "graft-predictor"}, "spec": predictor}
    kubernetes_validate.validate(pod, KUBERNETES, strict=True)
    c = _serving_container(predictor)
    assert c["name"] == "kserve-container"  # the name KServe gives a custom predictor's container
    serve = yaml.safe_load((ROOT / "params.yaml").read_text())["serve"]
    assert replicas == (serve["replicas"], serve["max_replicas"])
    (deployment, _) = documents(K8S / "serving" / "deployment.yaml")
    (same_pod,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {k: v for k, v in c.items() if k not in ("name", "image")} == {
        k: v for k, v in same_pod.items() if k not in ("name", "image")}  # one pod, two ways to run it


def test_the_serving_manifests_are_generated_from_params_yaml(tmp_path):
    from graft_kfp.pipelines import serving

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for path in serving.write(str(ROOT / "params.yaml"), tmp_path):
        assert path.read_text() == (K8S / "serving" / path.name).read_text(), (
            f"infra/k8s/serving/{path.name} is stale: run `make kfp-compile`")
    params["serve"]["resources"] = {"cpu_request": "3", "cpu_limit": "4", "memory_request": "3Gi",
                                    "memory_limit": "4Gi"}
    params["serve"]["replicas"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    isvc_path, deploy_path = serving.write(str(tmp_path / "params.yaml"), tmp_path / "out")
    (isvc,) = documents(isvc_path)
    deployment, _ = documents(deploy_path)
    for pod in (isvc["spec"]["predictor"], deployment["spec"]["template"]["spec"]):
        assert pod["containers"][0]["resources"] == {"requests": {"cpu": "3", "memory": "3Gi"},
                                                     "limits": {"cpu": "4", "memory": "4Gi"}}
    assert deployment["spec"]["replicas"] == isvc["spec"]["predictor"]["minReplicas"] == 3
