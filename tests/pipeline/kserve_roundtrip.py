"""Run by .venv-kserve's python: each YAML document given on stdin through the kserve SDK's V1beta1InferenceService.

Prints a JSON list: each document as the SDK's model serialises it again (an unknown field is dropped on the way),
or {"error": "..."} where the model refuses a value (a string where an integer belongs).
"""

import json
import sys

import kserve.models
import kubernetes.client.models
import yaml
from kserve.api_client import ApiClient

# kserve's models name the Kubernetes types they embed (V1ObjectMeta, V1Container, ...) but kserve.models does not
# export them, and its ApiClient looks names up there only: lend it the kubernetes client's models.
for name in dir(kubernetes.client.models):
    if name.startswith("V1") and not hasattr(kserve.models, name):
        setattr(kserve.models, name, getattr(kubernetes.client.models, name))
api = ApiClient()
out = []
for doc in yaml.safe_load_all(sys.stdin.read()):
    try:
        model = api._ApiClient__deserialize(doc, "V1beta1InferenceService")
        out.append(api.sanitize_for_serialization(model))
    except (TypeError, ValueError) as exc:
        out.append({"error": f"{type(exc).__name__}: {exc}"})
print(json.dumps(out))
