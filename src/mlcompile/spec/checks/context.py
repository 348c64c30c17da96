"""What every section's checks share: the spec, where its keys are, and how to report."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Protocol

from mlcompile import codes
from mlcompile.errors import Diagnostic, did_you_mean
from mlcompile.spec.compose import Composed
from mlcompile.spec.models import Model, Spec
from mlcompile.spec.paths import PathChecker
from mlcompile.spec.resolved import Resolved
from mlcompile.spec.tables import TableType
from mlcompile.spec.yaml_loader import KeyPath
from mlcompile.uris import is_uri


class _NamesModel(Protocol):
    @property
    def model(self) -> str: ...


_IDENT = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_]*)')
_SQL_NOISE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.S)


def identifiers(text: str) -> list[str]:
    """Names a SQL text or expression mentions, outside strings and comments."""
    cleaned = _SQL_NOISE.sub(" ", text)
    return [
        quoted.replace('""', '"') if quoted else bare for quoted, bare in _IDENT.findall(cleaned)
    ]


class Context:
    """One resolution: the spec, the facts learned so far and the diagnostics found."""

    def __init__(
        self, spec: Spec, composed: Composed, broken: Mapping[str, set[str]] | None = None
    ) -> None:
        self.spec = spec
        self.composed = composed
        # entries left out for their shape errors: references to them are not errors here
        self.broken = broken or {}
        self.root = composed.project_root
        self.out = Resolved(spec=spec, project_root=self.root)
        self.paths = PathChecker(self.root)
        self.diagnostics: list[Diagnostic] = []
        # each source's table type (spec/tables.py), None where only a run can tell
        self.tables: dict[str, TableType | None] = {}
        # models whose features had selectors: for each name now listed, the index of the
        # entry of the spec's list that gave it (checks/selectors.py)
        self.feature_origins: dict[str, list[int]] = {}
        self._reported: set[tuple[str, KeyPath]] = set()

    def error(
        self,
        code: str,
        message: str,
        path: KeyPath,
        hint: str | None = None,
        inside: tuple[str, int | None] | None = None,
        once: bool = False,
    ) -> None:
        """Report at `path`; `inside` (a text value at that path and a character offset in
        it) places the report inside the value, as DuckDB's error positions do. `once`: not
        when this message was reported at this path already (a feature read by several
        models, a schema checked on several sources, is one mistake)."""
        if once and (message, path) in self._reported:
            return
        self._reported.add((message, path))
        span = self.composed.span_inside(path, *inside) if inside else self.composed.span(path)
        dotted = ".".join(str(p) for p in path)
        self.diagnostics.append(Diagnostic(code, message, span, hint, path=dotted))

    def ref(self, name: str, known: Mapping[str, object], what: str, path: KeyPath) -> bool:
        if name in known:
            return True
        left_out = self.broken.get(what + "s", set())
        if name in left_out:
            return False
        hint = (
            did_you_mean(name, [*known, *left_out])
            or f"no {what}s are defined; add one under '{what}s:'"
        )
        self.error(codes.UNKNOWN_NAME, f"unknown {what} '{name}'", path, hint)
        return False

    def with_models(
        self, section: str, entries: Mapping[str, _NamesModel]
    ) -> Iterator[tuple[str, KeyPath, Model]]:
        """Each entry of a section (gates, monitoring) whose model exists, with its key path
        and that model; an unknown model is reported and its entry passed over."""
        for name, entry in entries.items():
            at: KeyPath = (section, name)
            if self.ref(entry.model, self.spec.models, "model", (*at, "model")):
                yield name, at, self.spec.models[entry.model]

    def file_exists(self, value: str, path: KeyPath) -> None:
        """E305 for a missing file, at a path the path check let through. Objects behind a
        URI are looked for when the step reads them: validate stays offline."""
        if is_uri(value) or self.paths.problem(value) is not None:
            return
        target = (self.root / value).resolve()
        if not target.is_file():
            siblings = [p.name for p in target.parent.iterdir()] if target.parent.is_dir() else []
            self.error(
                codes.NO_SUCH_FILE,
                f"no such file: '{value}'",
                path,
                did_you_mean(target.name, siblings),
            )

    def feature_path(self, model: str, index: int) -> KeyPath:
        """Where the model's feature number `index` is written in the spec."""
        origins = self.feature_origins.get(model)
        return ("models", model, "features", origins[index] if origins else index)

    def columns_of(self, source: str) -> list[str] | None:
        return self.out.source_columns.get(source)

    def raw_column(self, column: str, source: str, path: KeyPath, what: str) -> None:
        columns = self.columns_of(source)
        if columns is not None and column not in columns:
            self.error(
                codes.UNKNOWN_NAME,
                f"unknown {what} '{column}': not a column of source '{source}'",
                path,
                did_you_mean(column, columns),
            )

    def cycles(self, graph: dict[str, list[str]], section: str, what: str) -> None:
        """Report each cycle once, with its path, at the first node that closes it."""
        state: dict[str, int] = {}
        reported: set[frozenset[str]] = set()

        def visit(node: str, stack: list[str]) -> None:
            state[node] = 1
            stack.append(node)
            for nxt in graph.get(node, []):
                if state.get(nxt) == 1:
                    loop = stack[stack.index(nxt) :]
                    key = frozenset(loop)
                    if key not in reported:
                        reported.add(key)
                        chain = " -> ".join([*loop, nxt])
                        self.error(
                            codes.CYCLE,
                            f"{what}s form a cycle: {chain}",
                            (section, nxt),
                            f"a {what} cannot depend on itself through other {what}s",
                        )
                elif state.get(nxt) is None:
                    visit(nxt, stack)
            stack.pop()
            state[node] = 2

        for node in sorted(graph):
            if node not in state:
                visit(node, [])
