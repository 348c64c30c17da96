"""The command table: every command is listed once with its module, loaded when asked for."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from mlcompile.cli import COMMANDS, cli


def test_every_listed_command_loads_under_its_name() -> None:
    context = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert isinstance(command, click.Command) and command.name == name
    assert cli.get_command(context, "no-such-command") is None


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line}
    assert listed == set(COMMANDS)


def test_a_command_imports_only_its_own_module() -> None:
    """`runs list` loads neither the compiler nor the other commands' modules."""
    code = (
        "import sys\n"
        "from mlcompile.cli import main\n"
        "sys.argv = ['mlcompile', 'runs', 'list', '--runs-dir', 'nowhere']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code in (0, None), exit.code\n"
        "loaded = {m for m in sys.modules if m.startswith('mlcompile.cli.')}\n"
        "assert loaded <= {'mlcompile.cli.runs', 'mlcompile.cli.output', 'mlcompile.cli.params',"
        " 'mlcompile.cli.project', 'mlcompile.cli.summary'}, loaded\n"
        "heavy = {'mlcompile.compiler', 'pandas', 'kfp', 'zenml', 'lightgbm'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lineage_is_recorded_by_the_runners_that_can() -> None:
    """The command line records lineage after a run on a runner with that capability, not
    on a backend of some name: the local runner has it, the plugins' runners do not."""
    from mlcompile.backends import RecordsLineage, Runner, get_backend

    local, kfp, zenml = (get_backend(name) for name in ("local", "kfp", "zenml"))
    assert all(isinstance(backend, Runner) for backend in (local, kfp, zenml))
    assert isinstance(local, RecordsLineage)
    assert not isinstance(kfp, RecordsLineage) and not isinstance(zenml, RecordsLineage)
