"""A build imports kfp without its client, and while it compiles a pipeline, six kfp SDK
helpers are swapped for faster ones.

`kfp/__init__` imports `kfp.Client` (and with it the kubernetes client's models), two thirds
of the time of `import kfp`, unless `_KFP_RUNTIME` is `true` (kfp's own switch, which its
containers set): `import_kfp` imports the package with it set, only for `kfp/__init__`, and
gives the package the three names it skipped lazily (PEP 562), so `kfp.Client`, `kfp.dsl`
and `kfp.components` still work, and a later `import kfp.client` imports the real one.

Each helper does what the original does, for the inputs a compile gives it; everything is restored
on exit, and a helper a kfp release renames is left alone (docs/benchmarks.md has the times):

- `PipelineTask._ensure_container_spec_exists` takes `inspect.stack()` (source context of every
  frame) only to name its caller in a possible error message: one frame is enough.
- `utils.maybe_rename_for_k8s` (two regular expressions) is called for every task once per task
  of the same DAG, quadratic in the tasks: its results are cached for the compile.
- `yaml.dump_all` makes a node of every value with PyYAML's pure-Python representer, even
  with libyaml's emitter: the IR (a dict of JSON values) is written by `ir_yaml` instead, in
  PyYAML's layout with every mapping or list of scalars on one line (YAML's flow style), and
  long strings never folded: the same documents in a tenth fewer bytes than PyYAML's default.
- `type_utils.is_parameter_type` and `get_parameter_type` map an I/O type name to a kind (a
  regular expression and a table each time), several times for each argument of each task:
  their results for a type name (a string) are cached for the compile.
- `pipeline_spec_builder.merge_deployment_spec_and_component_spec` copies a part's (a pipeline
  used as a component) executors into the pipeline's, listing all the pipeline's executors
  for each one, quadratic in the steps: the part's identical executors are merged first
  (`merge_components`, which runs on the whole IR at the end anyway), and those the pipeline
  holds already, the same, are left out (`_drop_shared`), so it copies a handful at most.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from mlcompile_kfp.ir_yaml import UnsupportedValue, dump_documents
from mlcompile_kfp.merge import merge_components

# What `kfp/__init__` imports unless `_KFP_RUNTIME` is set: its name -> module, attribute there
_SKIPPED: dict[str, tuple[str, str | None]] = {
    "components": ("kfp.components", None),
    "dsl": ("kfp.dsl", None),
    "Client": ("kfp.client", "Client"),
}


def import_kfp() -> None:
    """Import the kfp package without `kfp.client`, unless it is imported already."""
    if "kfp" in sys.modules:
        return
    before = os.environ.get("_KFP_RUNTIME")
    os.environ["_KFP_RUNTIME"] = "true"
    try:
        import kfp  # type: ignore[import-untyped]
    finally:
        if before is None:
            del os.environ["_KFP_RUNTIME"]
        else:
            os.environ["_KFP_RUNTIME"] = before
    if not hasattr(kfp, "__getattr__"):
        kfp.__getattr__ = _skipped_name


def _skipped_name(name: str) -> Any:
    if name not in _SKIPPED:
        raise AttributeError(f"module 'kfp' has no attribute {name!r}")
    module_name, attribute = _SKIPPED[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    setattr(sys.modules["kfp"], name, value)
    return value


@contextlib.contextmanager
def kfp_speedups() -> Iterator[None]:
    from kfp.compiler import pipeline_spec_builder  # type: ignore[import-untyped]
    from kfp.dsl import pipeline_task, utils  # type: ignore[import-untyped]
    from kfp.dsl.types import type_utils  # type: ignore[import-untyped]

    with contextlib.ExitStack() as stack:
        merge_part = pipeline_spec_builder.__dict__.get("merge_deployment_spec_and_component_spec")
        if merge_part is not None:
            stack.enter_context(
                _swapped(
                    pipeline_spec_builder,
                    "merge_deployment_spec_and_component_spec",
                    functools.partial(_merged_part, merge_part),
                )
            )
        stack.enter_context(
            _swapped(pipeline_task.PipelineTask, "_ensure_container_spec_exists", _ensure)
        )
        rename = getattr(utils, "maybe_rename_for_k8s", None)
        if rename is not None:
            stack.enter_context(_swapped(utils, "maybe_rename_for_k8s", functools.cache(rename)))
        for name in ("is_parameter_type", "get_parameter_type"):
            found = type_utils.__dict__.get(name)
            if found is not None:
                stack.enter_context(_swapped(type_utils, name, _cached_for_names(found)))
        stack.enter_context(_ir_yaml())
        yield


def _ensure(self: Any) -> None:
    if self.container_spec is None:
        caller = sys._getframe(1).f_code.co_name
        raise ValueError(
            f"{caller} can only be used on single-step components, not pipelines used as "
            "components, or special components like importers."
        )


def _cached_for_names(function: Any) -> Any:
    """`function` of one argument, its results for a string cached (other values vary: a
    dict is not hashable, a type may be a generic alias)."""
    cache: dict[str, Any] = {}

    def cached(value: Any) -> Any:
        if type(value) is not str:
            return function(value)
        if value not in cache:
            cache[value] = function(value)
        return cache[value]

    return cached


def _merged_part(
    original: Any,
    main_pipeline_spec: Any,
    main_deployment_config: Any,
    sub_pipeline_spec: Any,
    main_platform_spec: Any,
    sub_platform_spec: Any,
) -> Any:
    spec, platform = type(sub_pipeline_spec)(), type(sub_platform_spec)()
    spec.CopyFrom(sub_pipeline_spec)
    platform.CopyFrom(sub_platform_spec)
    merge_components(spec, platform)
    _drop_shared(main_pipeline_spec, main_deployment_config, main_platform_spec, spec, platform)
    return original(
        main_pipeline_spec=main_pipeline_spec,
        main_deployment_config=main_deployment_config,
        sub_pipeline_spec=spec,
        main_platform_spec=main_platform_spec,
        sub_platform_spec=platform,
    )


def _drop_shared(
    main_spec: Any, main_deployment: Any, main_platform: Any, spec: Any, platform: Any
) -> None:
    """Drop from a part's `spec` and `platform` the executors and components the pipeline
    holds already under the same name, the same byte for byte: the part's tasks then use the
    pipeline's. kfp would copy them in under new names (train-2, ..., train-80), looking for a
    free name through a list of all the pipeline's names each time, quadratic in the parts."""
    from google.protobuf import json_format  # type: ignore[import-untyped]
    from kfp.pipeline_spec import pipeline_spec_pb2  # type: ignore[import-untyped]

    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    platforms = sorted(set(platform.platforms) | set(main_platform.platforms))

    def settings(of: Any, label: str) -> list[bytes]:
        # `in` first: reading a missing key of a protobuf map would add it
        found = [
            of.platforms[key].deployment_spec.executors if key in of.platforms else {}
            for key in platforms
        ]
        return [
            e[label].SerializeToString(deterministic=True) if label in e else b"" for e in found
        ]

    for label in [label for label in executors if label in main_deployment.executors]:
        own = pipeline_spec_pb2.PipelineDeploymentConfig.ExecutorSpec()
        json_format.ParseDict(json_format.MessageToDict(executors[label].struct_value), own)
        theirs = main_deployment.executors[label]
        if _same(own, theirs) and settings(platform, label) == settings(main_platform, label):
            del executors[label]
            for config in platform.platforms.values():
                if label in config.deployment_spec.executors:
                    del config.deployment_spec.executors[label]
    for name in [name for name in spec.components if name in main_spec.components]:
        if _same(spec.components[name], main_spec.components[name]):
            del spec.components[name]


def _same(one: Any, other: Any) -> bool:
    return bool(
        one.SerializeToString(deterministic=True) == other.SerializeToString(deterministic=True)
    )


@contextlib.contextmanager
def _swapped(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = owner.__dict__.get(name)
    if original is None:
        yield
        return
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _ir_yaml() -> contextlib.AbstractContextManager[None]:
    import yaml

    return _swapped(yaml, "dump_all", functools.partial(_dump_all, yaml.dump_all))


def _dump_all(original: Any, documents: Any, stream: Any = None, **options: Any) -> Any:
    """kfp's call, `yaml.dump_all(documents, file, sort_keys=True)`, written by `ir_yaml`;
    any other call, or a value `ir_yaml` does not write, by PyYAML."""
    documents = list(documents)
    if stream is not None and options == {"sort_keys": True}:
        try:
            text = dump_documents(documents)
        except UnsupportedValue:
            pass
        else:
            stream.write(text)
            return None
    return original(documents, stream, **options)
