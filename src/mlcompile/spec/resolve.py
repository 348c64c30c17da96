"""Checks that need the whole spec, and the resolved facts the planner builds on.

References between sections are by name and every one is checked (with "did you mean");
SQL and feature dependencies are inferred and checked for cycles; gate checks written as
text are parsed; paths must exist and stay inside the project.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlcompile import expressions
from mlcompile.errors import Diagnostic, did_you_mean
from mlcompile.spec.compose import Composed
from mlcompile.spec.lightgbm_params import check_params
from mlcompile.spec.models import (
    MAX_CHECK_LENGTH,
    TASK_METRICS,
    BatchDeployment,
    Check,
    Feature,
    KServeDeployment,
    RegistryDeployment,
    Spec,
)
from mlcompile.spec.paths import PathChecker
from mlcompile.spec.yaml_loader import KeyPath, load_yaml_file
from mlcompile.tasks import (
    DRIFT_METRICS,
    PREDICTION,
    lower_is_better,
    metric_problem,
    scoped_metric,
)
from mlcompile.trust import module_source

_IDENT = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_]*)')
_SQL_NOISE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.S)
# Possessive quantifiers (*+, ++) never give back what they matched, and no two of them can
# match the same characters, so a failing match costs one pass over the text: a run of
# spaces cannot make it backtrack (it once took 34 s on 40,000 of them).
_CHECK = re.compile(
    r"\s*+(?P<metric>[A-Za-z_]\w*+(?:\.[A-Za-z_]\w*+){0,2}+)\s*+(?:\[(?P<slice>[^\]]*+)\])?+\s*+"
    r"(?P<op>>=|<=|>|<)\s*+(?:(?P<prod>production|baseline)\s*+(?P<sign>[+-])\s*+)?+"
    r"(?P<value>[-+]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][-+]?+\d++)?+)\s*+"
)


@dataclass(frozen=True)
class GateCheck:
    """A gate check in one normal form, whichever way it was written."""

    metric: str
    op: str | None
    value: float | None
    max_drop: float | None
    slice: str | None
    text: str


@dataclass
class Resolved:
    spec: Spec
    project_root: Path
    source_inputs: dict[str, list[str]] = field(default_factory=dict)
    source_columns: dict[str, list[str] | None] = field(default_factory=dict)
    feature_inputs: dict[str, list[str]] = field(default_factory=dict)
    gate_checks: dict[str, list[GateCheck]] = field(default_factory=dict)
    monitor_checks: dict[str, list[GateCheck]] = field(default_factory=dict)
    # some path leaves the project, which the operator allowed
    paths_outside_project: bool = False


def identifiers(text: str) -> list[str]:
    """Names a SQL text or expression mentions, outside strings and comments."""
    cleaned = _SQL_NOISE.sub(" ", text)
    return [
        quoted.replace('""', '"') if quoted else bare for quoted, bare in _IDENT.findall(cleaned)
    ]


def parse_check(text: str) -> GateCheck | None:
    match = _CHECK.fullmatch(text) if len(text) <= MAX_CHECK_LENGTH else None
    slice_ = match["slice"].strip() if match and match["slice"] is not None else None
    if not match or slice_ == "":
        return None
    metric, op, value = match["metric"], match["op"], float(match["value"])
    metric, slice_ = scoped_metric(metric, slice_)
    if match["prod"]:
        drop = value if match["sign"] == "-" else -value
        higher_better = not lower_is_better(metric)
        # 'roc_auc >= production - 0.02' and 'rmse <= production + 0.5' are the sensible forms
        if higher_better != (op in (">=", ">")) or drop * (1 if higher_better else -1) < 0:
            return GateCheck(metric, op, None, None, slice_, text.strip())
        return GateCheck(metric, None, None, abs(value), slice_, text.strip())
    return GateCheck(metric, op, value, None, slice_, text.strip())


class _Checker:
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

    def error(
        self,
        code: str,
        message: str,
        path: KeyPath,
        hint: str | None = None,
        severity: str = "error",
    ) -> None:
        span = self.composed.span(path)
        dotted = ".".join(str(p) for p in path)
        self.diagnostics.append(Diagnostic(code, message, span, hint, severity, path=dotted))

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
        self.error("E301", f"unknown {what} '{name}'", path, hint)
        return False

    # ---- paths and trust ---------------------------------------------------------------

    def file_exists(self, value: str, path: KeyPath) -> None:
        """E305 for a missing file, at a path the path check let through."""
        if self.paths.problem(value) is not None:
            return
        target = (self.root / value).resolve()
        if not target.is_file():
            siblings = [p.name for p in target.parent.iterdir()] if target.parent.is_dir() else []
            self.error(
                "E305", f"no such file: '{value}'", path, did_you_mean(target.name, siblings)
            )

    def deprecated_grants(self) -> None:
        """Settings that once let a spec grant itself trust: still read, never obeyed."""
        settings = self.spec.settings
        written = settings.model_fields_set
        if "custom_modules" in written and settings.custom_modules:
            self.error(
                "W102",
                "settings.custom_modules is deprecated and allows nothing: trust never comes "
                "from the spec",
                ("settings", "custom_modules"),
                "remove it; project modules need no grant, and whoever runs mlcompile allows "
                "others with --allow-module NAME (see docs/trust-model.md)",
                severity="warning",
            )
        if "allow_paths_outside_project" in written and settings.allow_paths_outside_project:
            self.error(
                "W102",
                "settings.allow_paths_outside_project is deprecated and allows nothing: trust "
                "never comes from the spec",
                ("settings", "allow_paths_outside_project"),
                "remove it; whoever runs mlcompile allows paths outside the project with "
                "--allow-paths-outside-project (see docs/trust-model.md)",
                severity="warning",
            )

    # ---- sections -----------------------------------------------------------------------

    def run(self) -> None:
        self.deprecated_grants()
        self.paths.check(self.spec, (), self.error)
        self.sources()
        self.features()
        self.models()
        self.gates()
        self.deployments()
        self.monitoring()

    def sources(self) -> None:
        spec = self.spec
        for name, source in spec.sources.items():
            at: KeyPath = ("sources", name)
            if source.path is not None:
                self.file_exists(source.path, (*at, "path"))
                if source.format is None and Path(source.path).suffix.lower() not in (
                    ".csv",
                    ".parquet",
                    ".pq",
                ):
                    self.error(
                        "E203",
                        f"cannot tell the format of '{source.path}' from its name",
                        (*at, "path"),
                        "add 'format: csv' or 'format: parquet'",
                    )
                self.out.source_inputs[name] = []
            else:
                assert source.sql is not None
                if source.inputs is not None:
                    for index, other in enumerate(source.inputs):
                        self.ref(other, spec.sources, "source", (*at, "inputs", index))
                    self.out.source_inputs[name] = [i for i in source.inputs if i in spec.sources]
                else:
                    mentioned = dict.fromkeys(
                        i for i in identifiers(source.sql) if i in spec.sources
                    )
                    mentioned.pop(name, None)
                    self.out.source_inputs[name] = list(mentioned)
                    left_out = self.broken.get("sources", set())
                    if not mentioned and not left_out & set(identifiers(source.sql)):
                        self.error(
                            "E301",
                            f"the SQL of source '{name}' reads no other source",
                            (*at, "sql"),
                            "name other sources as tables, or list them under 'inputs'",
                        )
            self.out.source_columns[name] = None
            if source.schema_ is not None and self.ref(
                source.schema_, spec.schemas, "schema", (*at, "schema")
            ):
                self.out.source_columns[name] = self.schema_columns(source.schema_)
        self.cycles(self.out.source_inputs, "sources", "source")

    def schema_columns(self, schema_name: str) -> list[str] | None:
        schema = self.spec.schemas[schema_name]
        if schema.columns is not None:
            return list(schema.columns)
        assert schema.file is not None
        if self.paths.problem(schema.file) is not None:
            return None  # reported with every other path; never read
        target = self.root / schema.file
        if not target.is_file():
            self.error(
                "E305",
                f"no such file: '{schema.file}'",
                ("schemas", schema_name, "file"),
                "paths are relative to the spec's folder",
            )
            return None
        located = load_yaml_file(target, schema.file)
        columns = located.data.get("columns") if isinstance(located.data, dict) else None
        if located.diagnostics or not isinstance(columns, dict):
            self.error(
                "E307",
                f"'{schema.file}' is not a pandera YAML schema with 'columns'",
                ("schemas", schema_name, "file"),
            )
            return None
        return [str(c) for c in columns]

    def features(self) -> None:
        for name, feature in self.spec.features.items():
            inputs = _feature_inputs(feature)
            self.out.feature_inputs[name] = [
                i for i in inputs if i in self.spec.features and i != name
            ]
            if feature.custom is not None:
                source = module_source(feature.custom.split(":", 1)[0], self.root)
                if source.refusal is not None:
                    self.error("E308", source.refusal, ("features", name, "custom"), source.hint)
            if feature.expr is not None:
                self.expression(feature.expr, ("features", name, "expr"))
        self.cycles(self.out.feature_inputs, "features", "feature")

    def expression(self, expr: str, path: KeyPath) -> None:
        if expressions.accepted_before(self.root, expr):
            return
        problem = expressions.expression_problem(expr)
        if problem is None:
            expressions.remember(self.root, expr)
            return
        self.error(
            "E310",
            f"the expression is not one value computed from its row: {problem}",
            path,
            "write one SQL expression over the row's columns, e.g. 'sched_dep_time // 100'; "
            "use a source's SQL for joins and aggregates",
        )

    def columns_of(self, source: str) -> list[str] | None:
        return self.out.source_columns.get(source)

    def raw_column(self, column: str, source: str, path: KeyPath, what: str) -> None:
        columns = self.columns_of(source)
        if columns is not None and column not in columns:
            self.error(
                "E301",
                f"unknown {what} '{column}': not a column of source '{source}'",
                path,
                did_you_mean(column, columns),
            )

    def models(self) -> None:
        spec = self.spec
        for name, model in spec.models.items():
            at: KeyPath = ("models", name)
            check_params(self.root, name, model.task, model.params, self.error)
            if not self.ref(model.data, spec.sources, "source", (*at, "data")):
                continue
            columns = self.columns_of(model.data)
            for index, feature in enumerate(model.features):
                if feature in spec.features:
                    for column in self.raw_inputs(feature):
                        self.raw_column(column, model.data, ("features", feature), "column")
                    continue
                if (
                    columns is not None
                    and feature not in columns
                    and feature not in self.broken.get("features", ())
                ):
                    self.error(
                        "E301",
                        f"unknown feature '{feature}': not in features, nor a column of source '{model.data}'",
                        (*at, "features", index),
                        did_you_mean(feature, [*spec.features, *columns]),
                    )
            if model.target in model.features:
                self.error(
                    "E309",
                    f"the target '{model.target}' is also a feature of model '{name}'",
                    (*at, "target"),
                    "a model that sees its target learns nothing useful; remove it from features",
                )
            self.raw_column(model.target, model.data, (*at, "target"), "target column")
            if model.split.column:
                self.raw_column(
                    model.split.column, model.data, (*at, "split", "column"), "split column"
                )
            for index, column in enumerate(model.slices):
                self.raw_column(column, model.data, (*at, "slices", index), "slice column")
            produced = TASK_METRICS[model.task]
            for index, metric in enumerate(model.metrics or []):
                if metric not in produced:
                    self.error(
                        "E303",
                        f"a {model.task} model does not produce '{metric}'",
                        (*at, "metrics", index),
                        did_you_mean(metric, produced),
                    )

    def raw_inputs(self, feature: str, seen: set[str] | None = None) -> list[str]:
        """Raw columns a feature reads, through the features it builds on."""
        seen = seen if seen is not None else set()
        if feature in seen:
            return []
        seen.add(feature)
        out: list[str] = []
        definition = self.spec.features[feature]
        if definition.expr is not None or definition.custom is not None:
            return out
        for column in _feature_inputs(definition):
            if column in self.spec.features and column != feature:
                out += self.raw_inputs(column, seen)
            else:
                out.append(column)
        return out

    def gates(self) -> None:
        spec = self.spec
        for name, gate in spec.gates.items():
            at: KeyPath = ("gates", name)
            model = spec.models.get(gate.model)
            if not self.ref(gate.model, spec.models, "model", (*at, "model")) or model is None:
                continue
            produced = model.metrics or list(TASK_METRICS[model.task])
            normal: list[GateCheck] = []
            for index, check in enumerate(gate.checks):
                where = (*at, "checks", index)
                parsed = self.gate_check(check, where)
                if parsed is None:
                    continue
                problem = metric_problem(
                    parsed.metric, model.task, produced, model.early_stopping is not None
                )
                if problem:
                    self.error("E303", f"model '{gate.model}': {problem[0]}", where, problem[1])
                    continue
                if parsed.slice is not None and parsed.slice not in model.slices:
                    self.error(
                        "E303",
                        f"model '{gate.model}' reports no slice '{parsed.slice}'",
                        where,
                        f"add '{parsed.slice}' to models.{gate.model}.slices",
                    )
                    continue
                normal.append(parsed)
            self.out.gate_checks[name] = normal

    def gate_check(self, check: str | Check, where: KeyPath) -> GateCheck | None:
        if isinstance(check, Check):
            op = check.op
            text = (
                f"{check.metric} max_drop {check.max_drop}"
                if check.max_drop is not None
                else f"{check.metric} {op} {check.value}"
            )
            return GateCheck(check.metric, op, check.value, check.max_drop, check.slice, text)
        parsed = parse_check(check)
        if parsed is None:
            self.error(
                "E204",
                f"cannot read the check '{check}'",
                where,
                "write 'metric >= 0.8', 'metric[slice_column] >= 0.7' or 'metric >= production - 0.02'",
            )
            return None
        if parsed.value is None and parsed.max_drop is None:
            self.error(
                "E204",
                f"the check '{check}' compares in the wrong direction for '{parsed.metric}'",
                where,
                "higher-is-better metrics: 'm >= production - d'; lower-is-better: 'm <= production + d'",
            )
            return None
        return parsed

    def monitoring(self) -> None:
        spec = self.spec
        for name, monitor in spec.monitoring.items():
            at: KeyPath = ("monitoring", name)
            model = spec.models.get(monitor.model)
            if not self.ref(monitor.model, spec.models, "model", (*at, "model")) or model is None:
                continue
            if not self.broken.get("deployments") and not any(
                isinstance(d, RegistryDeployment) and d.model == monitor.model
                for d in spec.deployments.values()
            ):
                self.error(
                    "E301",
                    f"monitor '{name}' watches model '{monitor.model}', which nothing registers",
                    (*at, "model"),
                    "add a deployment with kind: registry for that model",
                )
            current = monitor.current
            if current.source is not None:
                self.ref(current.source, spec.sources, "source", (*at, "current", "source"))
            if monitor.reference is not None:
                self.ref(monitor.reference, spec.sources, "source", (*at, "reference"))
            labels = monitor.labels
            if labels is not None and self.ref(
                labels.source, spec.sources, "source", (*at, "labels", "source")
            ):
                for index, column in enumerate(labels.key):
                    self.raw_column(column, labels.source, (*at, "labels", "key", index), "key")
                    if current.source in spec.sources:
                        self.raw_column(
                            column, current.source, (*at, "labels", "key", index), "key"
                        )
                self.raw_column(
                    labels.target or model.target,
                    labels.source,
                    (*at, "labels", "target" if labels.target else "source"),
                    "label column",
                )
            produced = model.metrics or list(TASK_METRICS[model.task])
            normal: list[GateCheck] = []
            for index, check in enumerate(monitor.checks):
                where = (*at, "checks", index)
                early = parse_check(check) if isinstance(check, str) else None
                if early is not None and early.metric in DRIFT_METRICS and early.value is None:
                    self.drift_is_absolute(early, where)
                    continue
                parsed = self.gate_check(check, where)
                if parsed is not None and self.monitor_check(
                    parsed, monitor.model, produced, labels is not None, where
                ):
                    normal.append(parsed)
            self.out.monitor_checks[name] = normal

    def drift_is_absolute(self, check: GateCheck, where: KeyPath) -> None:
        self.error(
            "E204",
            f"'{check.text}': drift has no production value to compare with",
            where,
            f"bound it outright, as in '{check.metric} <= 0.2'",
        )

    def monitor_check(
        self, check: GateCheck, model: str, produced: list[str], labelled: bool, where: KeyPath
    ) -> bool:
        """A drift check names a model input (or 'prediction'); a performance check needs
        labels and, when bracketed, one of the model's slices."""
        definition = self.spec.models[model]
        if check.metric in DRIFT_METRICS:
            if check.max_drop is not None:
                self.drift_is_absolute(check, where)
                return False
            inputs = [*definition.features, PREDICTION]
            if check.slice is not None and check.slice not in inputs:
                self.error(
                    "E303",
                    f"'{check.slice}' is not an input of model '{model}', nor '{PREDICTION}'",
                    where,
                    did_you_mean(check.slice, inputs),
                )
                return False
            return True
        if metric_problem(check.metric, definition.task, produced, has_validation=False):
            self.error(
                "E303",
                f"'{check.metric}' is neither a drift measure nor a metric of model '{model}'",
                where,
                did_you_mean(check.metric, [*DRIFT_METRICS, *produced])
                or f"drift measures: {', '.join(DRIFT_METRICS)}",
            )
            return False
        if not labelled:
            self.error(
                "E303",
                f"'{check.text}' needs outcomes to measure performance",
                where,
                "add 'labels: {source: ..., key: [...]}' to the monitor",
            )
            return False
        if check.slice is not None and check.slice not in definition.slices:
            self.error(
                "E303",
                f"model '{model}' reports no slice '{check.slice}'",
                where,
                f"add '{check.slice}' to models.{model}.slices",
            )
            return False
        return True

    def deployments(self) -> None:
        spec = self.spec
        registered = {
            d.model for d in spec.deployments.values() if isinstance(d, RegistryDeployment)
        }
        for name, deployment in spec.deployments.items():
            at: KeyPath = ("deployments", name)
            if not self.ref(deployment.model, spec.models, "model", (*at, "model")):
                continue
            if not any(g.model == deployment.model for g in spec.gates.values()):
                # Not an error: some teams deploy ungated models to staging. Say so loudly.
                self.diagnostics.append(
                    Diagnostic(
                        "W101",
                        f"deployment '{name}' has no gate on model '{deployment.model}'",
                        self.composed.span((*at, "model")),
                        "add a gate so a bad model cannot deploy",
                        severity="warning",
                    )
                )
            if isinstance(deployment, BatchDeployment):
                self.ref(deployment.source, spec.sources, "source", (*at, "source"))
                if Path(deployment.output).suffix.lower() not in (".parquet", ".csv"):
                    self.error("E203", "the output must end in .parquet or .csv", (*at, "output"))
            elif (
                isinstance(deployment, KServeDeployment)
                and deployment.model not in registered
                and not self.broken.get("deployments")
            ):
                self.error(
                    "E301",
                    f"KServe deployment '{name}' needs a registry deployment of model '{deployment.model}'",
                    (*at, "model"),
                    "add a deployment with kind: registry for that model",
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
                            "E302",
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


def _feature_inputs(feature: Feature) -> list[str]:
    if feature.expr is not None:
        return identifiers(feature.expr)
    for op in ("column", "log", "impute", "encode", "scale"):
        value = getattr(feature, op)
        if value is not None:
            return [value if isinstance(value, str) else value.column]
    if feature.date_part is not None:
        return [feature.date_part.column]
    if feature.bucket is not None:
        return [feature.bucket.column]
    return []


def resolve(
    spec: Spec, composed: Composed, broken: Mapping[str, set[str]] | None = None
) -> tuple[Resolved, list[Diagnostic]]:
    """Check what needs the whole spec. `broken` names the entries, by section, left out of
    `spec` for their shape errors (their names count as defined)."""
    checker = _Checker(spec, composed, broken)
    checker.run()
    checker.out.paths_outside_project = checker.paths.used_outside
    return checker.out, checker.diagnostics
