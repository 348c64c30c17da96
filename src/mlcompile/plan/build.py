"""Build the Plan from a resolved spec: one node per step, typed artifacts between them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from mlcompile import __version__, codes, paths
from mlcompile.errors import Diagnostic, SpecError
from mlcompile.featureops import OPS
from mlcompile.plan.kinds import PATH_KINDS, StepKind, make_node_id
from mlcompile.plan.model import InputRef, Node, Plan, canonical_json, sha256_text
from mlcompile.plan.params import (
    EvaluateParams,
    FeaturesParams,
    GateParams,
    IngestParams,
    KServeParams,
    MonitorParams,
    RegisterParams,
    ScoreParams,
    SplitParams,
    TrainParams,
    TuneParams,
    ValidateParams,
)
from mlcompile.spec import GateCheck, Resolved
from mlcompile.spec.models import (
    BatchDeployment,
    Feature,
    KServeDeployment,
    Model,
    Monitor,
    RegistryDeployment,
)
from mlcompile.tasks import LOWER_IS_BETTER
from mlcompile.trust import project_module_file

# Part of every fingerprint: a release that changes what a step computes invalidates caches.
RUNTIME_VERSION = __version__


def _ref(node: str, output: str, kind: str) -> InputRef:
    return InputRef(node=node, output=output, type=kind)


class _Builder:
    def __init__(self, resolved: Resolved) -> None:
        self.r = resolved
        self.spec = resolved.spec
        self.nodes: dict[str, Node] = {}
        # each model's gates, looked up once per deployment: a scan per lookup is quadratic
        self.gates_of: dict[str, list[str]] = {}
        for name, gate in sorted(self.spec.gates.items()):
            self.gates_of.setdefault(gate.model, []).append(name)

    def add(
        self,
        kind: StepKind,
        name: str,
        params: Mapping[str, Any],
        inputs: Mapping[str, InputRef],
        outputs: Mapping[str, str],
    ) -> str:
        made = make_node_id(kind, name)
        params = dict(params)
        if self.r.paths_outside_project and kind in PATH_KINDS:
            # only then, so other plans keep their hashes; the runtime still asks the
            # operator's grant where it runs (mlcompile.trust)
            params["outside_project"] = True
        self.nodes[made] = Node(made, kind, name, params, dict(inputs), dict(outputs))
        return made

    def dataset_of(self, source: str) -> InputRef:
        """The dataset downstream steps read: validated when the source has a schema."""
        validate = make_node_id(StepKind.VALIDATE, source)
        if validate in self.nodes:
            return _ref(validate, "dataset", "dataset")
        return _ref(make_node_id(StepKind.INGEST, source), "dataset", "dataset")

    def build(self) -> None:
        # sources only monitors read belong to the monitoring job, not to training
        monitor_only = self._reach(self._monitor_roots()) - self._reach(self._training_roots())
        for name in self._source_order():
            if name not in monitor_only:
                self.source(name)
        for name in self.spec.models:
            self.model(name)
        for name in self.spec.gates:
            self.gate(name)
        if self.spec.settings.deploy:  # an experiment stops at its gates
            for name in self.spec.deployments:
                self.deployment(name)

    def build_monitoring(self) -> None:
        """The monitoring job: the sources its monitors read, then one node per monitor."""
        for name in self._source_order(self._monitor_roots()):
            self.source(name)
        for name in self.spec.monitoring:
            self.monitor(name)

    def _monitor_roots(self) -> set[str]:
        roots: set[str] = set()
        for monitor in self.spec.monitoring.values():
            roots |= {s for s in (monitor.current.source, monitor.reference) if s is not None}
            if monitor.labels is not None:
                roots.add(monitor.labels.source)
        return roots

    def _training_roots(self) -> set[str]:
        roots = {model.data for model in self.spec.models.values()}
        return roots | {
            d.source for d in self.spec.deployments.values() if isinstance(d, BatchDeployment)
        }

    def _reach(self, roots: set[str]) -> set[str]:
        """The sources `roots` read, directly or through SQL, themselves included."""
        found: set[str] = set()
        todo = list(roots)
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo += self.r.source_inputs.get(name, [])
        return found

    def _source_order(self, roots: set[str] | None = None) -> list[str]:
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            for dep in self.r.source_inputs.get(name, []):
                visit(dep)
            order.append(name)

        for name in sorted(self.spec.sources):
            if roots is None or name in roots:
                visit(name)
        return order

    def source(self, name: str) -> None:
        source = self.spec.sources[name]
        params: IngestParams
        inputs: dict[str, InputRef] = {}
        if source.path is not None:
            fmt = source.format or ("csv" if source.path.lower().endswith(".csv") else "parquet")
            params = {"source": name, "format": fmt, "path": source.path}
            if source.csv is not None:  # only when set: other plans keep their bytes
                params["csv"] = source.csv.model_dump(exclude_none=True)
        else:
            assert source.sql is not None
            tables = self.r.source_inputs[name]
            params = {"source": name, "format": "sql", "sql": source.sql, "tables": tables}
            inputs = {table: self.dataset_of(table) for table in tables}
        self.add(StepKind.INGEST, name, params, inputs, {"dataset": "dataset"})
        if source.schema_ is None:
            return
        schema = self.spec.schemas[source.schema_]
        schema_params: dict[str, Any] = {
            "name": source.schema_,
            "strict": schema.strict,
            "coerce": schema.coerce,
        }
        for key in ("min_rows", "unique", "checks"):
            if getattr(schema, key) is not None:  # only when set, as for csv above
                schema_params[key] = getattr(schema, key)
        if schema.file is not None:
            schema_params["file"] = schema.file
        else:
            assert schema.columns is not None
            schema_params["columns"] = {
                column: _column_rules(rules.model_dump(exclude_none=True))
                for column, rules in schema.columns.items()
            }
        checked: ValidateParams = {
            "source": name,
            "schema": schema_params,
            "on_invalid": source.on_invalid,
        }
        self.add(
            StepKind.VALIDATE,
            name,
            checked,
            {"dataset": _ref(make_node_id(StepKind.INGEST, name), "dataset", "dataset")},
            {"dataset": "dataset", "report": "report"},
        )

    def model(self, name: str) -> None:
        model = self.spec.models[name]
        seed = model.seed if model.seed is not None else self.spec.settings.seed
        split_seed = model.split.seed if model.split.seed is not None else seed
        split = self.add(
            StepKind.SPLIT,
            name,
            SplitParams(
                model=name,
                method=model.split.method,
                test_size=model.split.test_size,
                column=model.split.column,
                seed=split_seed,
                target=model.target,
                sample_rows=self.spec.settings.sample_rows,
            ),
            {"dataset": self.dataset_of(model.data)},
            {"train": "dataset", "test": "dataset"},
        )
        features = self.add(
            StepKind.FEATURES,
            name,
            FeaturesParams(
                model=name,
                task=model.task,
                target=model.target,
                features=self._feature_list(model.feature_names),
                model_inputs=model.feature_names,
                carry=list(model.slices),
            ),
            {"train": _ref(split, "train", "dataset")},
            {"transformer": "transformer", "train": "dataset"},
        )
        fitted = {
            "train": _ref(features, "train", "dataset"),
            "transformer": _ref(features, "transformer", "transformer"),
        }
        if model.tune is not None:
            tune = self.add(
                StepKind.TUNE,
                name,
                self.tune_params(name, model, seed),
                fitted,
                {"tuning": "tuning"},
            )
            # the best trial's parameters, which training merges over the fixed ones
            fitted = {**fitted, "tuning": _ref(tune, "tuning", "tuning")}
        train = self.add(
            StepKind.TRAIN, name, self.train_params(name, model, seed), fitted, {"model": "model"}
        )
        self.add(
            StepKind.EVALUATE,
            name,
            self.evaluate_params(name, model, seed),
            {
                "model": _ref(train, "model", "model"),
                "test": _ref(split, "test", "dataset"),
                # the validation split is the held-out part of the features' train rows
                "train": _ref(features, "train", "dataset"),
            },
            {"metrics": "metrics", "diagnosis": "diagnosis"},
        )

    def train_params(self, name: str, model: Model, seed: int) -> TrainParams:
        stopping = model.early_stopping
        params = TrainParams(
            model=name,
            task=model.task,
            target=model.target,
            num_class=None,
            params=dict(sorted(model.params.items())),
            num_boost_round=model.num_boost_round,
            early_stopping_rounds=stopping.rounds if stopping else None,
            validation_size=stopping.validation_size if stopping else None,
            seed=seed,
        )
        if model.serving:  # only when set: other specs' plans (and golden files) stay
            params["serving"] = model.serving.model_dump()
        # absent unless the spec sets one, so plans of specs without one do not change
        if isinstance(model.threshold, float | int):
            params["threshold"] = float(model.threshold)
        elif model.threshold is not None:
            params["threshold"] = model.threshold.model_dump(exclude_none=True)
        if model.positive_class is not None:
            params["positive_class"] = model.positive_class
        return params

    def tune_params(self, name: str, model: Model, seed: int) -> TuneParams:
        tune = model.tune
        assert tune is not None
        train = self.train_params(name, model, seed)
        train.pop("serving", None)  # how serve treats requests: no trial reads it
        # storage (below) and outside_project (add) are the optional keys mypy asks for here
        params: TuneParams = {
            **train,  # type: ignore[typeddict-item]
            "metric": tune.metric,
            "greater_is_better": tune.metric not in LOWER_IS_BETTER,
            "space": {
                param: searched.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
                for param, searched in sorted(tune.space.items())
            },
            "trials": tune.trials,
            "timeout_s": tune.timeout_s,
            "tune_seed": tune.seed if tune.seed is not None else seed,
            "sampler": tune.sampler,
            "pruning": tune.pruning,
        }
        if tune.storage is not None:
            params["storage"] = tune.storage
        return params

    def evaluate_params(self, name: str, model: Model, seed: int) -> EvaluateParams:
        params = EvaluateParams(
            model=name,
            task=model.task,
            target=model.target,
            metrics=model.builtin_metrics,
            slices=list(model.slices),
            min_slice_rows=model.min_slice_rows,
        )
        if model.custom_metrics:
            params["custom_metrics"] = self.custom_metrics(model)
        if model.bootstrap is not None:
            params["bootstrap"] = {**model.bootstrap.model_dump(), "seed": seed}
        return params

    def monitor_params(
        self,
        name: str,
        monitor: Monitor,
        model: Model,
        current: dict[str, Any],
        labels: dict[str, Any] | None,
    ) -> MonitorParams:
        params = MonitorParams(
            monitor=name,
            model=monitor.model,
            task=model.task,
            target=model.target,
            features=model.feature_names,
            metrics=model.builtin_metrics,
            slices=list(model.slices),
            min_slice_rows=model.min_slice_rows,
            registry=self.spec.settings.registry,
            registered_name=self.registered_name(monitor.model),
            alias=monitor.alias,
            reference=monitor.reference or "registry",
            current=current,
            labels=labels,
            checks=_check_params(self.r.monitor_checks.get(name, []), model.lower_is_better),
            bins=monitor.bins,
            min_rows=monitor.min_rows,
            retrain_on=list(monitor.retrain.when) if monitor.retrain else [],
            report=monitor.report or f"{paths.MONITORING}/{_safe_file(name)}.json",
        )
        if model.custom_metrics:
            params["custom_metrics"] = self.custom_metrics(model)
        if monitor.challenger is not None:
            params["challenger"] = monitor.challenger
        return params

    def custom_metrics(self, model: Model) -> list[dict[str, Any]]:
        """A model's custom metrics, each with the sha256 of its module's project file, so
        editing the function invalidates the steps that computed it."""
        entries = []
        for metric in model.custom_metrics:
            file = project_module_file(metric.function.split(":", 1)[0], self.r.project_root)
            entries.append(
                {
                    **metric.model_dump(),
                    # an operator-allowed installed module is versioned by its environment
                    "source_sha256": hashlib.sha256(file.read_bytes()).hexdigest()
                    if file
                    else None,
                }
            )
        return entries

    def _feature_list(self, wanted: list[str]) -> list[dict[str, Any]]:
        """Every feature the model needs, dependencies first, raw columns as passthrough."""
        ordered: list[dict[str, Any]] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            definition = self.spec.features.get(name)
            if definition is None:
                ordered.append({"name": name, "op": "passthrough", "column": name})
                return
            for dep in self.r.feature_inputs.get(name, []):
                visit(dep)
            ordered.append(_feature_params(name, definition))

        for name in wanted:
            visit(name)
        return ordered

    def registered_name(self, model: str) -> str:
        explicit = self.spec.models[model].registered_name
        if explicit:
            return explicit
        # the default comes from names that may hold any text; the registry keeps a folder
        # per model, so path separators and a leading dot become '_'
        default = re.sub(r"[/\\\x00]", "_", f"{self.spec.name}.{model}")
        return "_" + default[1:] if default.startswith(".") else default

    def gate(self, name: str) -> None:
        gate = self.spec.gates[name]
        checks = _check_params(
            self.r.gate_checks.get(name, []), self.spec.models[gate.model].lower_is_better
        )
        self.add(
            StepKind.GATE,
            name,
            GateParams(
                gate=name,
                model=gate.model,
                registry=self.spec.settings.registry,
                registered_name=self.registered_name(gate.model),
                compare_alias=gate.compare_to,
                checks=checks,
            ),
            {"metrics": _ref(make_node_id(StepKind.EVALUATE, gate.model), "metrics", "metrics")},
            {"decision": "decision"},
        )

    def monitor(self, name: str) -> None:
        monitor = self.spec.monitoring[name]
        model = self.spec.models[monitor.model]
        inputs: dict[str, InputRef] = {}
        current: dict[str, Any]
        if monitor.current.source is not None:
            current = {"source": monitor.current.source}
            inputs["current"] = self.dataset_of(monitor.current.source)
        else:
            assert monitor.current.prediction_log is not None
            current = {"prediction_log": monitor.current.prediction_log.model_dump()}
        if monitor.reference is not None:
            inputs["reference"] = self.dataset_of(monitor.reference)
        labels = None
        if monitor.labels is not None:
            labels = {
                "key": list(monitor.labels.key),
                "target": monitor.labels.target or model.target,
            }
            inputs["labels"] = self.dataset_of(monitor.labels.source)
        self.add(
            StepKind.MONITOR,
            name,
            self.monitor_params(name, monitor, model, current, labels),
            inputs,
            {"drift": "drift", "decision": "decision"},
        )

    def gate_inputs(self, model: str) -> dict[str, InputRef]:
        return {
            gate: _ref(gate, "decision", "decision")
            for gate in (make_node_id(StepKind.GATE, name) for name in self.gates_of.get(model, []))
        }

    def deployment(self, name: str) -> None:
        deployment = self.spec.deployments[name]
        model = deployment.model
        trained = _ref(make_node_id(StepKind.TRAIN, model), "model", "model")
        guards = self.gate_inputs(model)
        if isinstance(deployment, RegistryDeployment):
            evaluated = make_node_id(StepKind.EVALUATE, model)
            self.add(
                StepKind.REGISTER,
                name,
                RegisterParams(
                    deployment=name,
                    model=model,
                    registry=self.spec.settings.registry,
                    registered_name=self.registered_name(model),
                    alias=deployment.alias,
                ),
                {
                    "model": trained,
                    "metrics": _ref(evaluated, "metrics", "metrics"),
                    "diagnosis": _ref(evaluated, "diagnosis", "diagnosis"),
                    "reference": _ref(make_node_id(StepKind.SPLIT, model), "train", "dataset"),
                    **guards,
                },
                {"registration": "registration"},
            )
        elif isinstance(deployment, KServeDeployment):
            registered = make_node_id(
                StepKind.REGISTER,
                next(
                    n
                    for n, d in sorted(self.spec.deployments.items())
                    if isinstance(d, RegistryDeployment) and d.model == model
                ),
            )
            kserve = KServeParams(
                deployment=name,
                model=model,
                registered_name=self.registered_name(model),
                namespace=deployment.namespace,
                storage_uri=deployment.storage_uri,
                output=deployment.output or f"deploy/{_safe_file(name)}.yaml",
                resources=deployment.resources.model_dump(),
            )
            if deployment.canary_traffic_percent is not None:  # only when set: plans stay
                kserve["canary_traffic_percent"] = deployment.canary_traffic_percent
            self.add(
                StepKind.KSERVE,
                name,
                kserve,
                {"registration": _ref(registered, "registration", "registration")},
                {"file": "file"},
            )
        else:
            self.add(
                StepKind.SCORE,
                name,
                ScoreParams(
                    deployment=name,
                    model=model,
                    output=deployment.output,
                    format="csv" if deployment.output.lower().endswith(".csv") else "parquet",
                    id_columns=list(deployment.id_columns),
                ),
                {"model": trained, "dataset": self.dataset_of(deployment.source), **guards},
                {"file": "file"},
            )


def _check_params(checks: list[GateCheck], lower: frozenset[str]) -> list[dict[str, Any]]:
    """Checks as the runtime reads them: a bound (`op`, `value`), a `max_drop` (with the
    direction of a custom metric, which only the spec knows), or a comparison of two
    `versions` (`op`, and `value` the margin added to the right side)."""
    out = []
    for check in checks:
        item: dict[str, Any] = {"metric": check.metric, "slice": check.slice, "text": check.text}
        if check.versions is not None:
            item["versions"] = list(check.versions)
        if check.max_drop is not None:
            item["max_drop"] = check.max_drop
            if check.metric in lower:
                item["lower_is_better"] = True
        else:
            item.update(op=check.op, value=check.value)
        out.append(item)
    return out


def _safe_file(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-")
    return cleaned or sha256_text(name)[:12]


def _column_rules(rules: dict[str, Any]) -> dict[str, Any]:
    """Spec column rules in the runtime's shape: flags, plus a list of checks."""
    out: dict[str, Any] = {
        k: rules.pop(k) for k in ("dtype", "nullable", "unique", "required") if k in rules
    }
    rules.pop("description", None)
    checks = []
    argument = {"isin": "values", "notin": "values", "regex": "pattern"}
    for check, arg in sorted(rules.items()):
        if check in ("in_range", "str_length"):
            checks.append({"check": check, "min": arg.get("min"), "max": arg.get("max")})
        else:
            checks.append({"check": check, argument.get(check, "value"): arg})
    out["checks"] = checks
    return out


def _feature_params(name: str, feature: Feature) -> dict[str, Any]:
    return {"name": name, "op": OPS[feature.op].plan_op, **feature.params()}


def _fingerprints(nodes: dict[str, Node]) -> tuple[Node, ...]:
    """Hash every node after its inputs. graphlib (stdlib) orders them: it costs nothing to
    import, which keeps `mlcompile run` with everything cached fast; a cycle (only possible
    through a bug, since the spec checks refuse them) is reported with its path."""
    from graphlib import CycleError, TopologicalSorter

    graph = {n.id: {r.node for r in n.inputs.values()} for n in nodes.values()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise SpecError([Diagnostic(codes.CYCLE, f"the plan has a cycle: {cycle}")]) from None
    done: dict[str, Node] = {}
    for node_id in order:
        node = nodes[node_id]
        payload = {
            "kind": node.kind,
            "params": node.params,
            "inputs": {k: f"{done[r.node].fingerprint}/{r.output}" for k, r in node.inputs.items()},
            "runtime": RUNTIME_VERSION,
        }
        done[node_id] = Node(
            node.id,
            node.kind,
            node.name,
            node.params,
            node.inputs,
            node.outputs,
            fingerprint=sha256_text(canonical_json(payload)),
        )
    return tuple(done[k] for k in sorted(done))


def build_plan(resolved: Resolved, composed_data: Mapping[str, Any]) -> Plan:
    builder = _Builder(resolved)
    builder.build()
    return _plan(resolved, composed_data, resolved.spec.name, builder)


MONITORING_SUFFIX = "-monitoring"


def build_monitor_plan(resolved: Resolved, composed_data: Mapping[str, Any]) -> Plan | None:
    """The monitoring job, a plan of its own that runs on a schedule; None without monitors."""
    if not resolved.spec.monitoring:
        return None
    builder = _Builder(resolved)
    builder.build_monitoring()
    return _plan(resolved, composed_data, resolved.spec.name + MONITORING_SUFFIX, builder)


def _plan(
    resolved: Resolved, composed_data: Mapping[str, Any], name: str, builder: _Builder
) -> Plan:
    settings = resolved.spec.settings
    recorded = {"registry": settings.registry, "store": settings.store, "seed": settings.seed}
    if not settings.deploy:
        recorded["deploy"] = False  # only then, so other plans keep their bytes
    if settings.lineage is not None:  # the same: only a spec that sets it changes its plan
        recorded["lineage"] = settings.lineage.model_dump(mode="json")
    return Plan(
        name=name,
        spec_sha256=sha256_text(canonical_json(_as_resolved(resolved, composed_data))),
        settings=recorded,
        nodes=_fingerprints(builder.nodes),
    )


def _as_resolved(resolved: Resolved, composed_data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The composed spec with feature selectors replaced by the names they select: a spec
    that writes its features out and one that selects the same ones have the same plan."""
    if not resolved.selected:
        return composed_data
    models = dict(composed_data["models"])
    for name in resolved.selected:
        models[name] = {**models[name], "features": resolved.spec.models[name].feature_names}
    return {**composed_data, "models": models}
