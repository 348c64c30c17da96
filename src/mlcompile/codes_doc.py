"""docs/diagnostics.md, generated from the catalogues of diagnostic codes."""

from __future__ import annotations

import sys
from pathlib import Path

from mlcompile.codes import catalogues

_DOC_HEAD = """# Diagnostic codes

Generated from the catalogues (`mlcompile.codes` and each installed plugin's) by
`python -m mlcompile.codes_doc docs/diagnostics.md`; a test fails when this page is stale.

Every diagnostic mlcompile prints has a code, `<prefix><three digits>`. The prefix says who
reports it: `E` (errors) and `W` (warnings) are mlcompile's own; each plugin has a letter of
its own. The severity shown is the default; SARIF output (`--format sarif`) carries the
same name, description and default level in its `rules`.

A plugin declares its codes in a `mlcompile.codes.Catalogue` with its own prefix and
registers it under the `mlcompile.diagnostics` entry point group in its `pyproject.toml`:

```toml
[project.entry-points."mlcompile.diagnostics"]
mybackend = "mlcompile_mybackend.codes:CATALOGUE"
```

A prefix already taken (by mlcompile or another installed plugin) is refused.
"""


def markdown() -> str:
    """docs/diagnostics.md: every code of every installed catalogue, with an example."""
    parts = [_DOC_HEAD]
    for catalogue in catalogues():
        prefixes = ", ".join(f"`{p}`" for p in catalogue.prefixes)
        parts.append(f"\n## {catalogue.title} ({prefixes})\n")
        for code in catalogue:
            parts.append(
                f"\n### {code}: {code.name}\n\n{code.severity.value}. {code.doc}\n\n"
                f"```text\n{code.example}\n```\n"
            )
    return "".join(parts)


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(markdown(), encoding="utf-8")
