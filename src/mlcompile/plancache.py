"""The compiled plan of a spec whose inputs did not change, read back instead of rebuilt.

A no-op `run` (and a warm `validate`) would otherwise spend most of its time composing,
validating and planning a spec that is the same as last time. An entry is found by a key
over everything that can change the result:

- the spec's text, where it is shown from (the working directory names files in
  messages), the overrides, and every config-group file of the project's `conf/` and of
  the presets shipped with mlcompile (profiles, presets);
- the operator's trust: the grant variables of the environment and the project's
  pyproject.toml (`mlcompile.trust`);
- mlcompile's version and its code (size and modification time of each module), and the
  interpreter.

Files the spec names as inputs — data files, schema files, custom feature modules — are
not in the key (the key is known before the spec is parsed): the entry lists them with
their identity (size, modification time, inode, or absence), and an entry whose files
changed is not used. So it is with the installed backends, for a spec with `backends:`
sections: their settings models checked those sections. An entry holds its own digest: a corrupted or partial one is ignored,
never trusted, and writes are atomic. A spec whose interpolations call a resolver
(`${oc.env:...}`) depends on more than its files and is never cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from mlcompile import __version__, paths
from mlcompile.errors import Diagnostic, SourceSpan
from mlcompile.plan import Plan, canonical_json, sha256_text

if TYPE_CHECKING:
    from mlcompile.spec import LoadedSpec

CACHE_DIR = Path(paths.cache_dir("plan"))
ENTRY_FORMAT = "mlcompile.plancache/v2"
_PACKAGE_DIR = Path(__file__).resolve().parent
_GRANT_VARIABLES = ("MLCOMPILE_ALLOW_MODULES", "MLCOMPILE_ALLOW_PATHS_OUTSIDE_PROJECT")


@dataclass(frozen=True)
class Entry:
    """What a compile produced that the commands after it use."""

    plan: Plan
    monitor_plan: Plan | None
    warnings: list[Diagnostic]
    # the spec's `backends:` and `tracking.mlflow` sections, as validated
    backends: dict[str, Any]
    tracking: dict[str, Any] | None
    # `validate`'s summary: how many sources, features, ... the spec has
    counts: dict[str, int]
    # display name -> path of the config-group files composed in, for snippets
    groups: dict[str, str]
    # whether every `backends:` section was checked, as `validate` does
    backends_checked: bool


ENTRY_FIELDS = tuple(Entry.__dataclass_fields__)


def cache_key(spec_path: Path, overrides: list[str]) -> str | None:
    """The entry's name, or None when the spec cannot be cached (unreadable, or a resolver
    in an interpolation)."""
    from mlcompile.spec.cache import cache_key as compose_key
    from mlcompile.spec.compose import config_dirs, display_path

    try:
        spec_text = spec_path.read_text(encoding="utf-8")
        root = spec_path.resolve().parent
        composed = compose_key(spec_text, overrides, config_dirs(root))
        pyproject = root / "pyproject.toml"
        grants_file = pyproject.read_bytes() if pyproject.is_file() else b""
    except (OSError, UnicodeDecodeError):
        return None
    if composed is None:
        return None
    parts = [
        ENTRY_FORMAT,
        __version__,
        _code_identity(),
        sys.version,
        sys.prefix,
        composed,
        display_path(spec_path),
        str(root),
        hashlib.sha256(grants_file).hexdigest(),
        [os.environ.get(name) for name in _GRANT_VARIABLES],
    ]
    return sha256_text(canonical_json(parts))


def load(project_root: Path, key: str) -> Entry | None:
    """The entry, when it is whole and the files it depends on are as they were."""
    try:
        digest, _, text = (project_root / CACHE_DIR / f"{key}.json").read_bytes().partition(b"\n")
        if digest.decode("ascii") != hashlib.sha256(text).hexdigest():
            return None
        body = orjson.loads(text)
        if body["key"] != key:
            return None
        if body["files"] != file_identities(project_root, list(body["files"])):
            return None
        if body["backends"] and body["installed"] != installed_backends():
            return None
        return Entry(
            plan=Plan.from_dict(body["plan"]),
            monitor_plan=Plan.from_dict(body["monitor_plan"]) if body["monitor_plan"] else None,
            warnings=[_diagnostic(d) for d in body["warnings"]],
            backends=body["backends"],
            tracking=body["tracking"],
            counts=body["counts"],
            groups=body["groups"],
            backends_checked=body["backends_checked"],
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return None


def store(project_root: Path, key: str, entry: Entry, files: list[str]) -> None:
    """Keep a successful compile. Best effort: a read-only project compiles every time."""
    from mlcompile.backends.emit import write_text_atomic

    body = {
        "key": key,
        "warnings": [d.to_dict() for d in entry.warnings],
        "backends": entry.backends,
        "tracking": entry.tracking,
        "counts": entry.counts,
        "groups": entry.groups,
        "backends_checked": entry.backends_checked,
        "files": file_identities(project_root, files),
        # the models that checked the `backends:` sections (looked up only for such a spec)
        "installed": installed_backends() if entry.backends else None,
    }
    # The digest of the body's bytes goes on the first line, so checking it costs no second
    # encoding. json writes, orjson reads: orjson refuses the NaN json would write (a backend
    # setting may hold one), which makes such an entry a miss rather than a changed value.
    # The plans go in as the text each already has (encoding a large plan takes seconds).
    monitor = entry.monitor_plan.compact_json() if entry.monitor_plan else "null"
    rest = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    text = f'{{"plan":{entry.plan.compact_json()},"monitor_plan":{monitor},{rest[1:]}'
    digest = sha256_text(text)
    with contextlib.suppress(OSError):
        write_text_atomic(project_root / CACHE_DIR / f"{key}.json", f"{digest}\n{text}")


def input_files(loaded: LoadedSpec) -> list[str]:
    """The files, relative to the project, that the spec reads and that can change what
    validating it finds: data files, schema files and custom feature modules (the files
    a module name may be, whether or not they exist now)."""
    spec = loaded.resolved.spec
    files = [s.path for s in spec.sources.values() if s.path is not None]
    files += [s.file for s in spec.schemas.values() if s.file is not None]
    for feature in spec.features.values():
        if feature.custom is not None:
            module = feature.custom.split(":", 1)[0].replace(".", "/")
            files += [f"{module}.py", f"{module}/__init__.py"]
    return sorted(set(files))


def file_identities(root: Path, files: list[str]) -> dict[str, list[Any] | None]:
    """Each file's identity: what it resolves to, its size, modification time and inode;
    None when it does not exist."""
    found: dict[str, list[Any] | None] = {}
    for rel in files:
        path = root / rel
        try:
            info = path.stat()
        except (OSError, ValueError):
            found[rel] = None
            continue
        found[rel] = [os.path.realpath(path), info.st_size, info.st_mtime_ns, info.st_ino]
    return found


def _code_identity() -> str:
    """mlcompile's own modules, by name, size and modification time: an edited checkout
    (the same version) must not read plans an older compiler made."""
    stats = []
    for folder, _, names in sorted(os.walk(_PACKAGE_DIR)):
        for name in sorted(names):
            if name.endswith((".py", ".yaml")):
                info = os.stat(os.path.join(folder, name))
                stats.append(f"{folder}/{name}:{info.st_size}:{info.st_mtime_ns}")
    return sha256_text("\n".join(stats))


def installed_backends() -> list[list[str]]:
    """The installed backends: name, entry point and version."""
    from importlib.metadata import entry_points

    from mlcompile.backends.base import ENTRY_POINT_GROUP

    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        version = ep.dist.version if ep.dist is not None else ""
        found.append([ep.name, ep.value, version])
    return sorted(found)


def _diagnostic(data: dict[str, Any]) -> Diagnostic:
    span = data.pop("span")
    return Diagnostic(**data, span=SourceSpan(**span) if span is not None else None)
