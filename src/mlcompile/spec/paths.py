"""Every path a spec or a backend's settings name, checked by one rule (E306).

A settings model marks its path fields `Annotated[str, PROJECT_PATH]`; `project_paths`
finds each one in a validated model, wherever it sits, so a new path field cannot be
forgotten. A path must stay inside the project folder (and not be that folder itself)
unless whoever runs mlcompile allows paths outside it (`mlcompile.trust`).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlcompile import codes, uris
from mlcompile.spec.yaml_loader import KeyPath
from mlcompile.trust import HOW_TO_ALLOW_PATHS, PROJECT_PATH, grants
from mlcompile.uris import is_uri

# (code, message, key path, hint): how a checker reports a located error
Report = Callable[[str, str, KeyPath, str], None]


def project_paths(
    value: Any, prefix: KeyPath = (), marked: bool = False
) -> Iterator[tuple[KeyPath, str]]:
    """(key path, path text) of every field marked as a project path in `value`, a
    validated model, and in the models, mappings and lists it holds. `marked`: `value`
    sits under such a field."""
    if isinstance(value, str):
        if marked:
            yield prefix, value
    elif isinstance(value, BaseModel):
        for name, key, path in _path_fields(type(value)):
            yield from project_paths(getattr(value, name), (*prefix, key), path)
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from project_paths(inner, (*prefix, key), marked)
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            yield from project_paths(inner, (*prefix, index), marked)


@functools.cache
def _path_fields(model: type[BaseModel]) -> tuple[tuple[str, str, bool], ...]:
    """(attribute, key, marked) of the fields of `model` that may hold a project path: a spec
    of ten thousand nodes would otherwise ask every field of every instance."""
    return tuple(
        (name, field.alias or name, marked)
        for name, field in model.model_fields.items()
        if (marked := PROJECT_PATH in field.metadata or _marked(field.annotation))
        or _may_hold_model(field.annotation)
    )


def _may_hold_model(annotation: Any) -> bool:
    if annotation is Any or annotation is object:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_may_hold_model(arg) for arg in typing.get_args(annotation))


def _marked(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        _, *metadata = typing.get_args(annotation)
        if PROJECT_PATH in metadata:
            return True
    return any(_marked(arg) for arg in typing.get_args(annotation))


class PathChecker:
    """Checks paths against one project; asks for the operator's grants only when a path
    leaves the project (reading pyproject.toml costs time every `validate` would pay)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._outside_allowed: bool | None = None
        self.used_outside = False  # a path left the project, with the operator's grant

    def problem(self, value: str) -> tuple[str, str] | None:
        """(message, hint) when `value` may not be used; None when it may."""
        target = (self.root / value).resolve()
        if target == self.root:
            return (
                f"the path '{value}' is the project folder itself",
                "name a file or folder inside it, e.g. .mlcompile/store",
            )
        if target.is_relative_to(self.root):
            return None
        if self._outside_allowed is None:
            self._outside_allowed = grants(self.root).paths_outside_project
        if not self._outside_allowed:
            return f"the path '{value}' leaves the project folder", HOW_TO_ALLOW_PATHS
        self.used_outside = True
        return None

    def check(self, model: BaseModel, prefix: KeyPath, report: Report) -> None:
        """Report an E306 for every path field of `model` (found at `prefix`) that fails."""
        for path, value in project_paths(model, prefix):
            found = uri_problem(value, (*prefix, *path)) if is_uri(value) else self.problem(value)
            if found is not None:
                message, hint = found
                report(codes.PATH_OUTSIDE_PROJECT, message, path, hint)


# where a URI may stand (key path prefix), and the schemes it may use there
_URI_PLACES: dict[KeyPath, tuple[str, ...]] = {
    ("sources",): uris.SCHEMES,
    ("settings", "registry"): (*uris.OBJECT_STORES, "file"),
}


def uri_problem(value: str, path: KeyPath) -> tuple[str, str] | None:
    """(message, hint) when the URI `value` may not stand at `path`: sources read object
    storage and the registry lives there; the other paths (outputs, reports) are project
    paths so far."""
    unsupported = uris.problem(value)
    if unsupported is not None:
        return unsupported, "write s3://bucket/key, gs://, az://, file:// or https://"
    for place, schemes in _URI_PLACES.items():
        if path[: len(place)] == place:
            if uris.scheme(value) in schemes:
                return None
            shown = ", ".join(f"{s}://" for s in schemes)
            return f"the registry cannot live at '{value}'", f"use a project path or {shown}"
    return (
        f"'{value}' is a URI; only sources and settings.registry use object storage so far",
        "give a path inside the project here",
    )
