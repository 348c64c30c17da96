"""While mlcompile compiles a pipeline, three kfp SDK helpers are swapped for faster ones.

Each does what the original does, for the inputs a compile gives it; everything is restored
on exit, and a helper a kfp release renames is left alone (docs/benchmarks.md has the times):

- `PipelineTask._ensure_container_spec_exists` takes `inspect.stack()` (source context of every
  frame) only to name its caller in a possible error message: one frame is enough.
- `utils.maybe_rename_for_k8s` (two regular expressions) is called for every task once per task
  of the same DAG, quadratic in the tasks: its results are cached for the compile.
- `yaml.dump_all` writes the IR with the pure-Python emitter: libyaml's, when PyYAML has it.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def kfp_speedups() -> Iterator[None]:
    from kfp.dsl import pipeline_task, utils  # type: ignore[import-untyped]

    with contextlib.ExitStack() as stack:
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

    dumper = getattr(yaml, "CDumper", None)
    if dumper is None:
        return contextlib.nullcontext()
    return _swapped(yaml, "dump_all", functools.partial(yaml.dump_all, Dumper=dumper))
