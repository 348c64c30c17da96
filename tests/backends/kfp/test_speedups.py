"""speedups: kfp imported without its client, and the swapped helpers restored after a compile."""

from __future__ import annotations

import io
import subprocess
import sys

import yaml
from mlcompile_kfp.speedups import _dump_all, kfp_speedups


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
