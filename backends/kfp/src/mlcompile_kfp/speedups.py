"""While mlcompile compiles a pipeline, four kfp SDK helpers are swapped for faster ones.

Each does what the original does, for the inputs a compile gives it; everything is restored
on exit, and a helper a kfp release renames is left alone (docs/benchmarks.md has the times):

- `PipelineTask._ensure_container_spec_exists` takes `inspect.stack()` (source context of every
  frame) only to name its caller in a possible error message: one frame is enough.
- `utils.maybe_rename_for_k8s` (two regular expressions) is called for every task once per task
  of the same DAG, quadratic in the tasks: its results are cached for the compile.
- `yaml.dump_all` writes the IR with the pure-Python emitter: libyaml's, when PyYAML has it,
  and with every mapping or list of plain values on one line (YAML's flow style): the same
  document in a tenth fewer bytes, most of them indentation.
- `pipeline_spec_builder.merge_deployment_spec_and_component_spec` copies a part's (a pipeline
  used as a component) executors into the pipeline's, listing all the pipeline's executors
  for each one, quadratic in the steps: the part's identical executors are merged first
  (`merge_components`, which runs on the whole IR at the end anyway), so it copies a handful.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any

from mlcompile_kfp.merge import merge_components


@contextlib.contextmanager
def kfp_speedups() -> Iterator[None]:
    from kfp.compiler import pipeline_spec_builder  # type: ignore[import-untyped]
    from kfp.dsl import pipeline_task, utils  # type: ignore[import-untyped]

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
        stack.enter_context(_c_yaml())
        yield


def _ensure(self: Any) -> None:
    if self.container_spec is None:
        caller = sys._getframe(1).f_code.co_name
        raise ValueError(
            f"{caller} can only be used on single-step components, not pipelines used as "
            "components, or special components like importers."
        )


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
    return original(
        main_pipeline_spec=main_pipeline_spec,
        main_deployment_config=main_deployment_config,
        sub_pipeline_spec=spec,
        main_platform_spec=main_platform_spec,
        sub_platform_spec=platform,
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


def _c_yaml() -> contextlib.AbstractContextManager[None]:
    import yaml

    dumper = getattr(yaml, "CDumper", yaml.Dumper)
    return _swapped(
        yaml, "dump_all", functools.partial(yaml.dump_all, Dumper=dumper, default_flow_style=None)
    )
