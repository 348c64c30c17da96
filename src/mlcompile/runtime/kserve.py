"""A KServe InferenceService manifest serving one registered LightGBM model version.

The text is a pure function of the params and the version (sorted keys, no clock), so a
re-render of the same deployment gives the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from mlcompile.errors import UsageError

LABEL_PREFIX = "mlcompile.io"
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


def _resource_name(name: str) -> str:
    """A DNS-1123 label (what Kubernetes accepts as an InferenceService name)."""
    cleaned = _NOT_DNS.sub("-", name.lower()).strip("-")[:63].rstrip("-")
    if not cleaned or not cleaned[0].isalpha():
        raise UsageError(
            f"deployment '{name}' cannot be turned into a Kubernetes name (it must start with "
            "a letter and contain letters, digits or '-')"
        )
    return cleaned


def _label_value(value: str) -> str:
    return _NOT_LABEL.sub("-", value)[:63].strip("-._")


def inference_service(params: Mapping[str, Any], version: int) -> dict[str, Any]:
    name = str(params["registered_name"])
    resources = {k: str(v) for k, v in (params.get("resources") or {}).items()}
    predictor: dict[str, Any] = {
        "model": {
            "modelFormat": {"name": "lightgbm"},
            # the registry's own layout, synced to the bucket as it is on disk
            "storageUri": f"{str(params['storage_uri']).rstrip('/')}/{name}/versions/{version}",
            # Two dicts, not one shared: PyYAML writes a shared object as anchor + alias.
            "resources": {"requests": dict(resources), "limits": dict(resources)},
        }
    }
    if params.get("canary_traffic_percent") is not None:
        # KServe sends this share to the new revision, the rest to the last ready one
        predictor["canaryTrafficPercent"] = int(params["canary_traffic_percent"])
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": _resource_name(str(params.get("deployment") or name)),
            "namespace": str(params.get("namespace") or "default"),
            "labels": {
                f"{LABEL_PREFIX}/registered-name": _label_value(name),
                f"{LABEL_PREFIX}/model-version": str(version),
            },
        },
        "spec": {"predictor": predictor},
    }


def render(params: Mapping[str, Any], version: int) -> str:
    manifest = inference_service(params, version)
    text: str = yaml.safe_dump(manifest, sort_keys=True, default_flow_style=False)
    return text
