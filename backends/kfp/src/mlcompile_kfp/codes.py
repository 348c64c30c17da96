"""The Kubeflow Pipelines backend's diagnostic codes (prefix K), registered with mlcompile
through the `mlcompile.diagnostics` entry point."""

from __future__ import annotations

from mlcompile.codes import Catalogue
from mlcompile.errors import Severity

CATALOGUE = Catalogue("mlcompile-kfp", ("K",), "Kubeflow Pipelines backend")
_c = CATALOGUE.code

BAD_QUANTITY = _c(
    "K101",
    "kfp-quantity",
    "A CPU or memory quantity Kubernetes would not accept.",
    "backends: {kfp: {resources: {cpu_limit: lots}}}",
)
REQUEST_OVER_LIMIT = _c(
    "K102",
    "kfp-request-over-limit",
    "A CPU or memory request above its limit.",
    "backends: {kfp: {resources: {cpu_request: '2', cpu_limit: '1'}}}",
)
BAD_NODE_SELECTOR = _c(
    "K103",
    "kfp-node-selector",
    "A node selector label Kubernetes would not accept.",
    "backends: {kfp: {node_selector: {'bad key!': x}}}",
)
BAD_SECRET_NAME = _c(
    "K104",
    "kfp-secret-name",
    "A Secret name Kubernetes would not accept.",
    "backends: {kfp: {secrets: [{secret_name: Bad_Name, env: {}}]}}",
)
BAD_SECRET_ENV = _c(
    "K105",
    "kfp-secret-env",
    "An environment variable name or Secret key that is not valid.",
    "backends: {kfp: {secrets: [{secret_name: s, env: {1BAD: key}}]}}",
)
RELATIVE_PROJECT_ROOT = _c(
    "K106",
    "kfp-project-root",
    "project_root is not an absolute path inside the container.",
    "backends: {kfp: {project_root: app}}",
)
BAD_IMAGE = _c(
    "K107",
    "kfp-image",
    "An image reference that is empty or holds spaces.",
    "backends: {kfp: {base_image: 'python 3.11'}}",
)
UNSAFE_REQUIREMENT = _c(
    "K108",
    "kfp-unsafe-requirement",
    "A packages_to_install entry with quotes, $, backticks, backslashes or control characters "
    "(KFP pastes requirements into a shell command line).",
    "backends: {kfp: {packages_to_install: ['x; rm -rf /']}}",
)
UNKNOWN_STEP_KIND = _c(
    "K110",
    "kfp-step-kind",
    "A plan step kind this backend has no component for.",
    "a plan from a newer mlcompile with a step kind this backend does not know",
)
CACHED_MONITOR = _c(
    "K111",
    "kfp-cached-monitor",
    "kinds.monitor.caching: true makes a monitor report an earlier run's verdict.",
    "backends: {kfp: {kinds: {monitor: {caching: true}}}}",
    severity=Severity.WARNING,
)
IR_NEAR_LIMIT = _c(
    "K120",
    "kfp-ir-large",
    "The compiled IR is over 1 MiB, near the 1.5 MiB a cluster stores in etcd.",
    "a spec of about 1,300 steps",
    severity=Severity.WARNING,
)
IR_TOO_LARGE = _c(
    "K121",
    "kfp-ir-too-large",
    "The compiled IR is over the 1.5 MiB a cluster stores in etcd (kubeflow/pipelines issue 4170).",
    "a spec of about 2,000 steps",
)
del _c
