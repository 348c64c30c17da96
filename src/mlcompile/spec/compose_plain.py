"""The defaults list of a plain spec, composed without Hydra.

Importing Hydra and running its defaults-list machinery costs about half a second, most of
what a cold `mlcompile validate` would spend. The specs people write use a small part of
that grammar: `group@package: option` and `group: option` entries naming a config-group
file, and `_self_`. For that part Hydra's answer is a plain merge of the files in list
order (a mapping merges into a mapping, anything else replaces), which this module
computes from the YAML our own loader reads (the one that gives source positions).

Anything else returns None and Hydra composes it: command-line overrides, `optional` and
`override` entries, lists of options, config files with their own defaults list, values
OmegaConf treats specially (`${...}` interpolations, `???`), a config file OmegaConf's YAML
reader would read differently from ours, a merge OmegaConf refuses. So every answer here is
the one Hydra gives; tests/spec/test_compose_plain.py composes every spec both ways.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.spec.compose import GroupSource, _group_source, display_path
from mlcompile.spec.yaml_loader import KeyPath, Located, parse_yaml

SELF = "_self_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_SEGMENT = r"[A-Za-z_][A-Za-z0-9_-]*"
_PACKAGE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
# Words Hydra gives a meaning inside a package ("_group_", "_global_", ...).
_PACKAGE_KEYWORDS = ("_global_", "_group_", "_name_", "_here_")
# Hydra reads a config file's `# @package` header from its first 512 characters.
_HEADER_CHARS = 512
_STR = "tag:yaml.org,2002:str"
# OmegaConf's YAML reader adds a float resolver (it reads 1e3 as a number, YAML 1.1 as
# text); what it matches beyond YAML 1.1's own floats is written with these characters only,
# so plain text made of them is left to Hydra.
_FLOAT_LIKE = re.compile(r"[-+0-9_.eE:]+")


@dataclass(frozen=True)
class Plain:
    """The composed spec, the config-group files merged into it (in merge order), and those
    files as our loader read them."""

    data: dict[str, Any]
    groups: list[GroupSource]
    loaded: dict[Path, Located]


class _HydraOnly(Exception):
    """Something a plain merge would not answer the way Hydra does."""


def compose_plain(spec: Located, overrides: list[str], search_dirs: list[Path]) -> Plain | None:
    """The spec composed with its defaults list, or None when only Hydra can tell."""
    if overrides:
        return None
    try:
        return _compose(spec, search_dirs)
    except _HydraOnly:
        return None


@dataclass(frozen=True)
class _Entry:
    group: str
    option: str
    package: str | None  # written after '@'


def _compose(spec: Located, search_dirs: list[Path]) -> Plain:
    body = {key: value for key, value in spec.data.items() if key != "defaults"}
    _check_values(body)
    data: dict[str, Any] = {}
    groups: list[GroupSource] = []
    loaded: dict[Path, Located] = {}
    for entry in _entries(spec.data.get("defaults")):
        if entry is None:
            _merge(data, body)
            continue
        found = _group_source(f"{entry.group}/{entry.option}", "", search_dirs)
        if not found:
            raise _HydraOnly  # Hydra looks further (its own configs) and says what is missing
        path = found[0].path
        located = _read(path)
        package = _package(entry, _header(located.text))
        if "hydra" in (package[:1] or located.data):
            raise _HydraOnly  # Hydra's own settings (Hydra refuses some from a config group)
        groups.append(GroupSource(package, path, display_path(path)))
        loaded[path] = located
        placed: Any = located.data
        for key in reversed(package):
            placed = {key: placed}
        _merge(data, placed)
    return Plain(data, groups, loaded)


def _entries(defaults: Any) -> list[_Entry | None]:
    """The defaults list in merge order, None standing for the spec's own keys (`_self_`,
    last when the list does not name it, as Hydra places it)."""
    if not isinstance(defaults, list):
        raise _HydraOnly
    entries: list[_Entry | None] = []
    keys: set[tuple[str, str]] = set()
    for item in defaults:
        if item == SELF:
            if None in entries:
                raise _HydraOnly  # Hydra refuses a second _self_
            entries.append(None)
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise _HydraOnly
        ((key, option),) = item.items()
        group, at, package = str(key).partition("@")
        if not (_NAME.fullmatch(group) and isinstance(option, str) and _NAME.fullmatch(option)):
            raise _HydraOnly
        if at and not (
            _PACKAGE.fullmatch(package) and not any(k in package for k in _PACKAGE_KEYWORDS)
        ):
            raise _HydraOnly
        # Hydra's key for a group choice: the same group at the same place twice is an error
        choice = (group, package if at else group)
        if choice in keys:
            raise _HydraOnly
        keys.add(choice)
        entries.append(_Entry(group, option, package if at else None))
    if None not in entries:
        entries.append(None)
    return entries


def _read(path: Path) -> Located:
    """A config-group file as our loader reads it, when OmegaConf's reader (which Hydra
    uses) gives the same data."""
    import yaml

    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise _HydraOnly from None
    if text.startswith("\ufeff"):
        raise _HydraOnly  # Hydra then reads no `# @package` header
    located = parse_yaml(text, display_path(path))
    if located.diagnostics or not isinstance(located.data, dict) or "defaults" in located.data:
        raise _HydraOnly
    _check_nodes(yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    _check_values(located.data)
    return located


def _check_nodes(node: Any) -> None:
    """Refuse what OmegaConf's YAML reader reads otherwise: keys that are not text (it keeps
    numbers and booleans as such), merge keys (it orders their keys first), timestamps (it
    refuses tagged ones) and plain text it may read as a float."""
    if node.id == "mapping":
        for key, value in node.value:
            if key.id != "scalar" or key.tag != _STR or _float_like(key):
                raise _HydraOnly
            _check_nodes(value)
    elif node.id == "sequence":
        for item in node.value:
            _check_nodes(item)
    elif node.tag == "tag:yaml.org,2002:timestamp" or (node.tag == _STR and _float_like(node)):
        raise _HydraOnly


def _float_like(node: Any) -> bool:
    return not node.style and _FLOAT_LIKE.fullmatch(node.value) is not None  # plain: "" or None


def _check_values(value: Any) -> None:
    """Refuse what OmegaConf gives a meaning: interpolations and the missing value `???`."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_values(key)
            _check_values(item)
    elif isinstance(value, list):
        for item in value:
            _check_values(item)
    elif isinstance(value, str):
        if "${" in value or value == "???":
            raise _HydraOnly
    elif value is not None and not isinstance(value, int | float):
        raise _HydraOnly


def _header(text: str) -> str | None:
    """The file's `# @package` header as Hydra reads it: lines `# @key value` from the
    start (blank lines skipped) up to the first other line, within the first 512
    characters of the text as Python reads it (universal newlines)."""
    package = None
    head = text.replace("\r\n", "\n").replace("\r", "\n")[:_HEADER_CHARS]
    for line in head.splitlines():
        line = line.strip()
        if not line:
            continue
        if not re.match(r"^\s*#\s*@", line):
            break
        words = [word for word in line.lstrip("#").strip().split(" ") if word]
        if len(words) != 2:
            raise _HydraOnly  # Hydra refuses the header
        if words[0] == "@package":
            package = words[1]
    return package


def _package(entry: _Entry, header: str | None) -> KeyPath:
    """Where the file's keys go: the entry's `@package`, else the file's header, else the
    group's name."""
    if entry.package is not None:
        package = entry.package
    elif header is None or header == "_group_":
        package = entry.group
    elif header == "_global_":
        return ()
    elif _PACKAGE.fullmatch(header) and not any(k in header for k in _PACKAGE_KEYWORDS):
        package = header
    else:
        raise _HydraOnly
    return tuple(package.split("."))


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """OmegaConf's merge of plain data: mappings merge key by key, keeping the order keys
    first came in; any other value replaces what was there (copied, so that no two places
    share a list or a mapping). OmegaConf refuses a list onto a mapping and the reverse."""
    for key, value in update.items():
        old = into.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            _merge(old, value)
            continue
        if {type(old), type(value)} == {dict, list}:
            raise _HydraOnly
        into[key] = _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
