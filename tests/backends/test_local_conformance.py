"""The built-in local backend passes the same conformance kit as every plugin."""

from __future__ import annotations

import pytest

from mlcompile.testing import BackendConformance


@pytest.mark.slow
class TestLocalConformance(BackendConformance):
    backend = "local"
