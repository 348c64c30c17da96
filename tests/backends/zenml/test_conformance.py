"""mlcompile's backend conformance kit, run against the ZenML backend."""

from __future__ import annotations

import pytest

from mlcompile.testing import BackendConformance

# Three of the kit's tests run a fresh ZenML pipeline each (~15 s on two cores).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("zenml")]


class TestZenmlConformance(BackendConformance):
    backend = "zenml"
