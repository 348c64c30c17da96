"""The command line. Errors become one located message and an exit code, never a traceback.

Exit codes: 0 ok, 1 internal error (a bug), 2 invalid spec or usage, 3 data validation
failed, 4 a metric gate failed, 5 backend or run failure. MLCOMPILE_FULL_ERROR=1 shows the
full traceback of internal errors.

Every command is listed in COMMANDS with the module that defines it; a module is imported
only when its command runs (or `--help` lists them all), so one command's imports never
slow down another's start.
"""

from __future__ import annotations

import importlib

import click

from mlcompile import __version__

# command name -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "validate": "mlcompile.cli.compile:validate",
    "build": "mlcompile.cli.compile:build",
    "graph": "mlcompile.cli.compile:graph",
    "schema": "mlcompile.cli.compile:schema",
    "infer-schema": "mlcompile.cli.infer_schema:infer_schema",
    "backends": "mlcompile.cli.compile:list_backends",
    "run": "mlcompile.cli.run:run",
    "runs": "mlcompile.cli.runs:runs",
    "registry": "mlcompile.cli.registry:registry",
    "step": "mlcompile.cli.step:step",
    "lineage": "mlcompile.cli.lineage:lineage",
    "report": "mlcompile.cli.report:report",
    "diff": "mlcompile.cli.diff:diff",
    "monitor": "mlcompile.cli.monitor:monitor",
    "serve": "mlcompile.cli.serve:serve",
}


class Commands(click.Group):
    """A group whose commands come from COMMANDS, each imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command) and command.name == cmd_name, target
        return command


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlcompile")
def cli() -> None:
    """Compile a declarative ML pipeline spec into runnable pipelines.

    OVERRIDES are Hydra overrides: key=value, +key=value, ~key, group=option.
    """


def main() -> None:
    cli(prog_name="mlcompile")
