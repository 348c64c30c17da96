"""mlcompile's backend conformance kit, run against the Kubeflow Pipelines backend."""

from __future__ import annotations

import pytest

from mlcompile.testing import BackendConformance

# The kit's run tests execute pipelines on kfp.local, one subprocess per step.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kfp")]


class TestKfpConformance(BackendConformance):
    backend = "kfp"
