"""One component and one executor per step kind in the compiled IR.

The KFP SDK writes a component and an executor, with the component's whole Python source,
for every task, even when tasks share a component (kfp 2.x does not merge them). A plan of
1,000 nodes then makes an IR of several MiB, over the 1.5 MiB etcd limit of a cluster. The
IR format lets many tasks refer to one component, so identical executors (same container, same
platform settings) and then identical components are merged here, on the PipelineSpec the SDK
built, before the SDK's compiler writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def merge_components(spec: Any, platform: Any) -> None:
    """Merge identical executors and components of `spec` (and `platform`) in place."""
    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    platform_executors = [
        config.deployment_spec.executors for _, config in sorted(platform.platforms.items())
    ]

    def executor_key(label: str) -> bytes:
        parts = [executors[label].SerializeToString(deterministic=True)]
        parts += [
            found[label].SerializeToString(deterministic=True) if label in found else b""
            for found in platform_executors
        ]
        return b"\0".join(parts)

    labels = _merge(
        executors,
        executor_key,
        lambda label: "exec-" + _function(executors[label]).replace("_", "-"),
    )
    for found in platform_executors:
        _rename(found, labels)
    for component in spec.components.values():
        # `executor_label` and `dag` are one field (a oneof): setting the label of a part,
        # even to "", would drop its DAG.
        if component.HasField("executor_label"):
            component.executor_label = labels[component.executor_label]

    components = spec.components
    # A part (a pipeline used as a component) has no executor, and keeps its name.
    by_executor = {
        name: "comp-" + c.executor_label.removeprefix("exec-") if c.executor_label else name
        for name, c in components.items()
    }
    names = _merge(
        components,
        lambda name: components[name].SerializeToString(deterministic=True),
        lambda name: by_executor[name],
    )
    dags = [spec.root.dag, *(c.dag for c in components.values() if c.HasField("dag"))]
    for dag in dags:
        for task in dag.tasks.values():
            task.component_ref.name = names.get(task.component_ref.name, task.component_ref.name)


def _merge(entries: Any, key: Callable[[str], bytes], base: Callable[[str], str]) -> dict[str, str]:
    """Keep one entry of each group of equal ones under a name from `base`; old -> new name."""
    groups: dict[bytes, list[str]] = {}
    for name in sorted(entries, key=_natural):
        groups.setdefault(key(name), []).append(name)
    renamed: dict[str, str] = {}
    taken: set[str] = set()
    for members in groups.values():
        wanted = base(members[0])
        new, n = wanted, 1
        while new in taken:
            n += 1
            new = f"{wanted}-{n}"
        taken.add(new)
        renamed.update(dict.fromkeys(members, new))
    _rename(entries, renamed)
    return renamed


def _rename(entries: Any, renamed: Mapping[str, str]) -> None:
    """Rename the entries of a protobuf map; entries that merge keep the first one's value."""
    kept = {}
    for old in sorted(entries, key=_natural):
        new = renamed.get(old, old)
        if new not in kept:
            kept[new] = _copy(entries[old])
    for old in list(entries):
        del entries[old]
    for new, value in kept.items():
        entries[new].CopyFrom(value)


def _copy(message: Any) -> Any:
    clone = type(message)()
    clone.CopyFrom(message)
    return clone


def _function(executor: Any) -> str:
    """The Python function a lightweight component's executor runs."""
    container = executor.struct_value.fields["container"].struct_value
    args = [value.string_value for value in container.fields["args"].list_value.values]
    return str(args[args.index("--function_to_execute") + 1])


def _natural(name: str) -> tuple[int, str]:
    # kfp numbers repeats train, train-2, ..., train-10: the first made comes first.
    return (len(name), name)
