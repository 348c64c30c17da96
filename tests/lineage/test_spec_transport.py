"""`settings.lineage.transport`: the spec names where events go, never a credential.

Bad settings are refused with their place in the file; a set transport reaches the steps
through the plan, and a local run posts every event to a real HTTP server on 127.0.0.1 with
the key read from the environment variable the spec names, which is in no file written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lineage.conftest import TRIM, copy_example
from tests.lineage.test_http_transport import server  # noqa: F401 (the fixture)
from tests.trail import cli

TOKEN = "token-only-in-the-environment-4711"


def _with_lineage(project: Path, *lines: str) -> Path:
    spec = project / "mlcompile.yaml"
    text = spec.read_text("utf-8")
    block = "".join(f"  {line}\n" for line in ("lineage:", *lines))
    spec.write_text(text.replace("settings:\n  seed: 13\n", f"settings:\n  seed: 13\n{block}", 1))
    return project


# each case: the lines under settings.lineage, the code and place (line:col) expected
_BAD = {
    "ftp url": (
        ["  transport:", "    type: http", "    url: ftp://127.0.0.1:5000"],
        "mlcompile.yaml:22:12: error E203",
        "not an http:// or https:// URL",
    ),
    "literal key": (
        ["  transport:", "    type: http", "    url: http://127.0.0.1:5000", "    api_key: s3cr3t"],
        "mlcompile.yaml:23:16: error E313",
        "looks like a credential",
    ),
    "key in api_key_env": (
        ["  transport:", "    type: http", "    url: http://x", "    api_key_env: 'sk-9f8e-7d6c'"],
        "mlcompile.yaml:23:20: error E203",
        "NAME of an environment variable",
    ),
    "password in url": (
        ["  transport:", "    type: http", "    url: http://me:hunter22@127.0.0.1:5000"],
        "mlcompile.yaml:22:12: error E313",
        "a password in a URL",
    ),
    "unknown key": (
        ["  transport:", "    type: console", "    colour: true"],
        "mlcompile.yaml:22:7: error E201",
        "unknown key 'colour'",
    ),
    "unknown type": (
        ["  transport:", "    type: carrier_pigeon"],
        "mlcompile.yaml:21:7: error E203",
        "carrier_pigeon",
    ),
}


@pytest.mark.parametrize("case", sorted(_BAD))
def test_bad_lineage_settings_are_located(tmp_path: Path, case: str) -> None:
    lines, where, message = _BAD[case]
    project = _with_lineage(copy_example(tmp_path / "flights"), *lines)
    done = cli(project, "validate", "mlcompile.yaml")
    assert done.returncode == 2, done.stdout + done.stderr
    found = [line for line in done.stderr.splitlines() if line.startswith(where)]
    assert found and message in found[0], done.stderr
    if case == "key in api_key_env":
        assert "sk-9f8e-7d6c" not in found[0]  # the message does not repeat a pasted key


# kfp: the steps run in kfp.local's subprocesses, with the transport from the emitted code
@pytest.mark.parametrize("backend", ["local", "kfp"])
def test_a_spec_transport_posts_every_event_with_the_key_from_the_environment(
    tmp_path: Path,
    server: tuple[str, list[tuple[str, str, dict[str, Any]]]],  # noqa: F811
    openlineage: Callable[[str, dict[str, Any]], list[str]],
    backend: str,
) -> None:
    url, received = server
    project = _with_lineage(
        copy_example(tmp_path / "flights"),
        "  transport:",
        "    type: http",
        f"    url: {url}",
        "    endpoint: api/v1/lineage",
        "    timeout_s: 5",
        "    api_key_env: LINEAGE_TEST_KEY",
    )
    env = {"LINEAGE_TEST_KEY": TOKEN, "OPENLINEAGE_URL": "", "OPENLINEAGE_API_KEY": ""}
    args = ("run", "mlcompile.yaml", "--backend", backend, *TRIM, "-q", "--format", "json")
    done = cli(project, *args, env=env)
    assert done.returncode in (0, 4), done.stdout + done.stderr  # a gate may fail on dev data
    assert "not sent" not in done.stderr and "not set up" not in done.stderr, done.stderr

    assert {path for path, _, _ in received} == {"/api/v1/lineage"}
    assert {auth for _, auth, _ in received} == {f"Bearer {TOKEN}"}
    events = [event for _, _, event in received]
    for event in events:
        assert openlineage("RunEvent", event) == [], event["job"]["name"]
    logged = (project / ".mlcompile" / "lineage" / "runs.jsonl").read_text("utf-8")
    assert len(logged.splitlines()) == len(events) > 2
    # (on kfp a failed gate may stop the run before every step has run)
    assert {"ingest:flights", "features:delayed"} <= {e["job"]["name"] for e in events}
    # the plan carries the transport, the key is in no file the build or the run wrote
    plans = list((project / "build").rglob("plan.json"))
    assert plans and all(
        json.loads(p.read_text())["settings"]["lineage"]["transport"]["url"] == url for p in plans
    )
    written = [p for p in (project / "build").rglob("*") if p.is_file()]
    written += [p for p in (project / ".mlcompile").rglob("*") if p.is_file()]
    assert not [p for p in written if TOKEN.encode() in p.read_bytes()]


def test_the_plan_is_unchanged_without_the_setting(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "flights")
    done = cli(project, "build", "mlcompile.yaml", "--out", "build")
    assert done.returncode == 0, done.stderr
    plan = json.loads((project / "build" / "plan.json").read_text())
    assert "lineage" not in plan["settings"]


@pytest.mark.parametrize("backend", ["kfp", "zenml"])
def test_the_transport_reaches_the_steps_an_orchestrator_runs(tmp_path: Path, backend: str) -> None:
    project = _with_lineage(
        copy_example(tmp_path / "flights"),
        "  transport:",
        "    type: http",
        "    url: http://127.0.0.1:5000",
        "    api_key_env: MARQUEZ_API_KEY",
    )
    done = cli(project, "build", "mlcompile.yaml", "--backend", backend, "--out", "build")
    assert done.returncode == 0, done.stderr
    pipeline = next((project / "build").rglob("pipeline.py"), None) or next(
        (project / "build").rglob("pipeline.yaml")
    )
    text = pipeline.read_text("utf-8")
    # each step's PipelineRun gets the plan's transport (a Python string literal)
    assert "MARQUEZ_API_KEY" in text and "http://127.0.0.1:5000" in text, pipeline
