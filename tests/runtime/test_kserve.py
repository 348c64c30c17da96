from __future__ import annotations

from typing import Any

import pytest
import yaml

from mlcompile.errors import UsageError
from mlcompile.runtime.kserve import render

PARAMS: dict[str, Any] = {
    "deployment": "delayed_kserve",
    "model": "delayed",
    "registered_name": "flights.delayed",
    "namespace": "ml-serving",
    "storage_uri": "s3://models/registry/",
    "output": "deploy/delayed_kserve.yaml",
    "resources": {"cpu": "2", "memory": "4Gi"},
}


def test_manifest_serves_the_registered_version() -> None:
    manifest = yaml.safe_load(render(PARAMS, 3))
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    assert manifest["metadata"] == {
        "name": "delayed-kserve",
        "namespace": "ml-serving",
        "labels": {
            "mlcompile.io/registered-name": "flights.delayed",
            "mlcompile.io/model-version": "3",
        },
    }
    model = manifest["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "lightgbm"}
    assert model["storageUri"] == "s3://models/registry/flights.delayed/versions/3"
    assert model["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }


def test_text_is_deterministic_and_plain() -> None:
    text = render(PARAMS, 3)
    assert text == render(dict(reversed(list(PARAMS.items()))), 3)
    assert "&id" not in text and "*id" not in text  # no YAML anchors for repeated values
    assert render(PARAMS, 4) != text


def test_names_kubernetes_rejects() -> None:
    with pytest.raises(UsageError, match="cannot be turned into a Kubernetes name"):
        render({**PARAMS, "deployment": "__"}, 1)
    hostile = yaml.safe_load(render({**PARAMS, "deployment": "Evil\nName: {x}"}, 1))
    assert hostile["metadata"]["name"] == "evil-name-x"


def test_a_canary_deployment_emits_canary_traffic_percent() -> None:
    from mlcompile.compiler import compile_spec
    from tests.conftest import EXAMPLE

    override = "+deployments.delayed_kserve.canary_traffic_percent=10"
    plan = compile_spec(EXAMPLE / "mlcompile.yaml", [override]).plan
    (node,) = [n for n in plan.nodes if n.kind == "kserve"]
    manifest = yaml.safe_load(render(node.params, 4))
    assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10
    plain = compile_spec(EXAMPLE / "mlcompile.yaml", []).plan
    (node,) = [n for n in plain.nodes if n.kind == "kserve"]
    assert "canaryTrafficPercent" not in yaml.safe_load(render(node.params, 4))["spec"]["predictor"]
