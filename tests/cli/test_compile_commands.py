"""validate, build, graph and schema as a user and CI call them: output, formats, exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import EXAMPLE

Cli = Callable[..., Result]
BROKEN = Path(__file__).resolve().parent.parent / "spec" / "broken"


def test_validate_ok(cli: Cli) -> None:
    result = cli("validate", EXAMPLE / "mlcompile.yaml")
    assert result.exit_code == 0
    assert (
        "ok (7 sources, 13 features, 2 models, 2 gates, 4 deployments, 1 monitors)" in result.output
    )


def test_invalid_spec_exits_2_with_located_errors_and_no_traceback(cli: Cli) -> None:
    result = cli("validate", BROKEN / "E3xx_references.yaml")
    assert result.exit_code == 2
    assert "E3xx_references.yaml:35:12: error E301: unknown model 'delayd'" in result.output
    assert "hint: did you mean 'delayed'?" in result.output
    assert "Traceback" not in result.output


def test_json_and_github_formats(cli: Cli) -> None:
    result = cli("validate", BROKEN / "E302_cycle.yaml", "--format", "json")
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert [d["code"] for d in payload["diagnostics"]] == ["E302", "E302"]
    assert payload["diagnostics"][0]["span"]["line"] == 5
    github = cli("validate", BROKEN / "E302_cycle.yaml", "--format", "github")
    assert github.stdout.startswith("::error file=")
    assert ",line=5,col=6,title=E302::" in github.stdout
    sarif = json.loads(cli("validate", BROKEN / "E302_cycle.yaml", "--format", "sarif").stdout)
    assert sarif["runs"][0]["results"][0]["ruleId"] == "E302"


def test_missing_spec_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "cannot read the file" in result.output


def test_build_is_byte_identical_and_check_detects_staleness(
    cli: Cli, flights_project: Path
) -> None:
    spec = flights_project / "mlcompile.yaml"
    out = flights_project / "build"
    assert cli("build", spec, "--out", out).exit_code == 0
    first = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    names = {str(p) for p in first}
    assert {"plan.json", "local/pipeline.json", "local/SHA256SUMS.json"} <= names
    assert {"lineage/pipeline.json", "lineage/jobs.jsonl"} <= names
    assert cli("build", spec, "--out", out).exit_code == 0
    second = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert first == second
    fresh = cli("build", spec, "--out", out, "--check")
    assert fresh.exit_code == 0, fresh.output
    stale = cli(
        "build",
        spec,
        "models.delayed.num_boost_round=10",
        "--out",
        out,
        "--check",
        "--format",
        "json",
    )
    assert stale.exit_code == 6
    changed = set(json.loads(stale.stdout)["stale"])
    assert {"plan.json", "local/SHA256SUMS.json", "local/pipeline.json"} <= changed
    assert "lineage/jobs.jsonl" in changed
    assert first == {
        p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_unknown_backend_lists_the_installed_ones(cli: Cli) -> None:
    result = cli("build", EXAMPLE / "mlcompile.yaml", "--backend", "lcoal", "--out", "/nonexistent")
    assert result.exit_code == 2
    assert "did you mean 'local'?" in result.output


def test_backend_settings_errors_are_located_in_the_spec(cli: Cli, flights_project: Path) -> None:
    spec = flights_project / "mlcompile.yaml"
    spec.write_text(spec.read_text() + "\nbackends:\n  local:\n    stroe: x\n")
    result = cli("build", spec)
    assert result.exit_code == 2
    assert "unknown key 'stroe' in backends.local" in result.output
    assert "hint: did you mean 'store'?" in result.output


def test_graph_formats(cli: Cli) -> None:
    text = cli("graph", EXAMPLE / "mlcompile.yaml").output
    assert text.startswith("plan flights (25 steps in 11 waves)")
    mermaid = cli("graph", EXAMPLE / "mlcompile.yaml", "--format", "mermaid").output
    assert mermaid.startswith("flowchart LR")
    assert '-- "decision" -->' in mermaid
    monitoring = cli("graph", EXAMPLE / "mlcompile.yaml", "--monitoring").output
    assert monitoring.startswith("plan flights-monitoring (9 steps in 4 waves)")
    assert "monitor:delayed_drift  <- ingest:december, ingest:december_outcomes" in monitoring
    none = cli("graph", EXAMPLE / "mlcompile.yaml", "~monitoring", "--monitoring")
    assert none.exit_code == 2 and "has no monitors" in none.output


def test_schema_command_prints_json_schema(cli: Cli) -> None:
    schema = json.loads(cli("schema").output)
    assert "models" in schema["properties"]


def test_validate_imports_no_tracker_or_numeric_library(flights_project: Path) -> None:
    """`--no-deploy`, the report's pictures and MLflow tracking add nothing to start-up."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mlcompile.cli import main\n"
        "sys.argv = ['mlcompile', 'validate', 'mlcompile.yaml', "
        "'tracking.mlflow.tracking_uri=http://127.0.0.1:9']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code in (0, None), exit.code\n"
        "heavy = {'mlflow', 'numpy', 'sklearn', 'lightgbm', 'pandas'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=flights_project)
