"""speedups: kfp imported without its client, and the swapped helpers restored after a compile."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
import yaml
from mlcompile_kfp import KfpBackend, KfpSettings
from mlcompile_kfp import speedups as kfp_speedups_module
from mlcompile_kfp.speedups import _dump_all, kfp_speedups

from mlcompile.compiler import Compiled


def test_kfp_is_imported_without_its_client_which_still_imports_on_demand() -> None:
    # A fresh interpreter: this one has imported kfp already.
    script = """
import os, sys
from mlcompile_kfp.speedups import import_kfp
import_kfp()
assert "kfp.client" not in sys.modules and "kubernetes" not in sys.modules
assert "_KFP_RUNTIME" not in os.environ
import kfp
from kfp import compiler, dsl
assert callable(dsl.pipeline) and kfp.dsl is dsl
from kfp import Client
import kfp.client
assert kfp.Client is Client is kfp.client.Client and kfp.components.load_component_from_text
"""
    subprocess.run([sys.executable, "-c", script], check=True)


def test_the_swapped_helpers_are_restored() -> None:
    from kfp.dsl.types import type_utils

    before = (yaml.dump_all, type_utils.is_parameter_type, type_utils.get_parameter_type)
    with kfp_speedups():
        assert yaml.dump_all is not before[0]
        assert type_utils.is_parameter_type("String") is True
        assert type_utils.is_parameter_type("system.Model@0.0.1") is False
        assert type_utils.get_parameter_type(str) == type_utils.get_parameter_type("String")
    assert (yaml.dump_all, type_utils.is_parameter_type, type_utils.get_parameter_type) == before


def test_a_document_the_ir_writer_refuses_is_written_by_pyyaml() -> None:
    out = io.StringIO()
    _dump_all(yaml.dump_all, [{"a": (1, 2)}], out, sort_keys=True)
    assert yaml.unsafe_load(out.getvalue()) == {"a": (1, 2)}


def test_parts_share_the_pipelines_executors_and_the_ir_is_unchanged(
    flights_compiled: Compiled, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part's executors and components that the pipeline holds already, the same, are not
    copied in under new names; the IR is the same bytes as when they are (merged at the end).
    Settings that differ by kind (a secret for register only) keep their executors apart."""
    from kfp.compiler import pipeline_spec_builder
    from mlcompile_kfp import render as kfp_render

    monkeypatch.setattr(kfp_render, "PART_SIZE", 5)
    settings = KfpSettings.model_validate(
        {
            "node_selector": {"pool": "cpu"},
            "secrets": [{"secret_name": "creds", "env": {"AWS_KEY": "key"}, "kinds": ["register"]}],
        }
    )
    held: list[list[str]] = []
    merge = pipeline_spec_builder.merge_deployment_spec_and_component_spec

    def recorded(**kwargs: object) -> object:
        merged = merge(**kwargs)
        held.append(sorted(kwargs["main_deployment_config"].executors))  # type: ignore[attr-defined]
        return merged

    monkeypatch.setattr(pipeline_spec_builder, "merge_deployment_spec_and_component_spec", recorded)
    files = KfpBackend().render(flights_compiled.plan, settings)
    assert len(held) >= 2
    # kfp names a copy it takes in after the one it holds: exec-gate-2, exec-register-2
    assert not [label for label in held[-1] if label.rsplit("-", 1)[-1].isdigit()], held[-1]

    monkeypatch.setattr(kfp_speedups_module, "_drop_shared", lambda *args: None)
    held.clear()
    assert KfpBackend().render(flights_compiled.plan, settings) == files
    assert any(label.rsplit("-", 1)[-1].isdigit() for label in held[-1]), held[-1]
