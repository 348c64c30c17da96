"""The project's folders for the commands that read them without compiling a spec: an
option given wins, then the spec in the current folder, then mlcompile.paths' defaults."""

from __future__ import annotations

from pathlib import Path

from mlcompile import paths

SPEC_FILE = "mlcompile.yaml"


def runs_folder(given: Path | None) -> Path:
    """Where the local runner keeps run records: `--runs-dir`, else backends.local.runs of
    ./mlcompile.yaml, else the default. A spec that does not load is an error here, as it
    would be for `run`: a wrong folder would list someone else's runs without a word."""
    if given is not None:
        return given
    spec = Path(SPEC_FILE)
    if not spec.is_file():
        return Path(paths.RUNS)
    from mlcompile.backends import get_backend
    from mlcompile.backends.local import LocalSettings
    from mlcompile.compiler import validated_backend_settings
    from mlcompile.spec import load_spec

    settings = validated_backend_settings(load_spec(spec, []), get_backend("local"))
    assert isinstance(settings, LocalSettings)
    return Path(settings.runs)
