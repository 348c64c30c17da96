"""The ZenML backend's diagnostic codes (prefix Z), registered with mlcompile through the
`mlcompile.diagnostics` entry point. They were E701-E704 and W701-W702 before plugins had
prefixes of their own (docs/design-notes.md)."""

from __future__ import annotations

from mlcompile.codes import Catalogue
from mlcompile.errors import Severity

CATALOGUE = Catalogue("mlcompile-zenml", ("Z",), "ZenML backend")
_c = CATALOGUE.code

GENERATED_KEY = _c(
    "Z101",
    "zenml-generated-key",
    "A run_config key the backend writes itself (enable_cache, parameters, ...).",
    "backends: {zenml: {run_config: {enable_cache: false}}}",
)
UNKNOWN_RUN_CONFIG_KEY = _c(
    "Z102",
    "zenml-run-config-key",
    "A key that is not a ZenML run configuration key.",
    "backends: {zenml: {run_config: {setings: {}}}}",
)
MODEL_NAME_CLASH = _c(
    "Z103",
    "zenml-model-clash",
    "Two registered models that would share one ZenML Model name.",
    "two models registered as 'a b' and 'a_b'",
)
ZENML_HOME_OUTSIDE = _c(
    "Z104",
    "zenml-home",
    "zenml_home is not a folder inside the project.",
    "backends: {zenml: {zenml_home: /tmp/zenml}}",
)
OPTIONS_FOR_NO_STEP = _c(
    "Z111",
    "zenml-options-unused",
    "Step options for a kind the plan has no step of.",
    "backends: {zenml: {kinds: {gate: {enable_cache: false}}}}   # a plan without gates",
    severity=Severity.WARNING,
)
CACHED_EFFECT = _c(
    "Z112",
    "zenml-cached-effect",
    "Caching a gate, monitor or deploy step, which ZenML cannot see the outside state of.",
    "backends: {zenml: {kinds: {monitor: {enable_cache: true}}}}",
    severity=Severity.WARNING,
)
del _c
