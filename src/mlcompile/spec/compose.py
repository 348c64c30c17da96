"""Compose a spec with Hydra: its `defaults` list, config groups and command-line overrides.

The spec file is parsed by our own loader (positions, duplicate keys, safe tags) and handed
to Hydra as the primary config through the ConfigStore; config groups come from the
project's `conf/` folder, then from the presets shipped with mlcompile (the repository's
top-level `conf/`, `mlcompile/conf` once installed). Hydra is only
imported when the spec needs it (overrides, `${...}`, or a defaults list beyond the plain
part `spec/compose_plain.py` merges itself), because it costs half a second to import and
run, and `mlcompile validate` must answer fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcompile import codes
from mlcompile.errors import Diagnostic, SourceSpan, SpecError, did_you_mean
from mlcompile.spec.yaml_loader import KeyPath, Located, inner_span, load_yaml_file


def _presets_dir() -> Path:
    """The shipped config groups: `mlcompile/conf` inside an installed wheel (hatch's
    force-include puts the repository's top-level conf/ there), else conf/ of the checkout
    this package runs from (an editable install)."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "conf"
    return installed if installed.is_dir() else package.parent.parent / "conf"


PRESETS_DIR = _presets_dir()
COMMAND_LINE = "<command line>"
_PRIMARY = "__mlcompile_spec__"


@dataclass
class GroupSource:
    package: KeyPath
    path: Path
    display: str


@dataclass
class Composed:
    """The composed spec as plain data, and where each of its values was written."""

    data: dict[str, Any]
    spec: Located
    overrides: list[str]
    groups: list[GroupSource] = field(default_factory=list)
    _loaded: dict[Path, Located] = field(default_factory=dict)

    @property
    def project_root(self) -> Path:
        return Path(self.spec.file).resolve().parent

    def texts(self) -> dict[str, str]:
        """File contents by display name, for snippets under diagnostics."""
        texts = {self.spec.file: self.spec.text, COMMAND_LINE: " ".join(self.overrides)}
        texts.update({loc.file: loc.text for loc in self._loaded.values()})
        return texts

    def span(self, path: KeyPath) -> SourceSpan | None:
        """The place that wrote `path`, or the nearest enclosing one."""
        override = _override_span(self.overrides, path)
        if override:
            return override
        if path not in self.spec.spans:
            # a key only an override wrote, reported at an ancestor (e.g. "unknown key")
            for index in range(len(self.overrides) - 1, -1, -1):
                if _override_key(self.overrides[index])[: len(path)] == path:
                    return override_span(self.overrides, index)
        layers: list[tuple[KeyPath, Located]] = [((), self.spec)]
        layers += [(g.package, self._load(g)) for g in reversed(self.groups)]
        for depth in range(len(path), -1, -1):
            prefix = path[:depth]
            for package, located in layers:
                if prefix[: len(package)] != package:
                    continue
                rest = prefix[len(package) :]
                span = located.spans.get(rest) if rest else located.spans.get(())
                if span is not None:
                    return span
        return SourceSpan(self.spec.file, 1, 1)

    def span_inside(self, path: KeyPath, value: str, offset: int | None) -> SourceSpan | None:
        """The place of character `offset` of the text `value` at `path` (a position DuckDB
        gives inside a SQL text), or the place of the value itself when it cannot tell."""
        span = self.span(path)
        if span is None or offset is None:
            return span
        text = self.texts().get(span.file)
        return (inner_span(text, span, value, offset) if text else None) or span

    def key_span(self, path: KeyPath) -> SourceSpan | None:
        """The span of the key itself (for unknown-key errors), falling back to `span`."""
        return self.spec.key_spans.get(path) or self.span(path)

    def _load(self, group: GroupSource) -> Located:
        if group.path not in self._loaded:
            self._loaded[group.path] = load_yaml_file(group.path, group.display)
        return self._loaded[group.path]


def display_path(path: Path) -> str:
    """Paths in messages are relative to the working directory when they can be."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _override_key(override: str) -> KeyPath:
    key = override.split("=", 1)[0].lstrip("+~")
    key = key.split("@", 1)[0]
    return tuple(key.split(".")) if key else ()


def _override_offsets(overrides: list[str]) -> list[int]:
    offsets, pos = [], 0
    for text in overrides:
        offsets.append(pos)
        pos += len(text) + 1
    return offsets


def _override_span(overrides: list[str], path: KeyPath) -> SourceSpan | None:
    for index in range(len(overrides) - 1, -1, -1):
        key = _override_key(overrides[index])
        if key and path[: len(key)] == key:
            return override_span(overrides, index)
    return None


def override_span(overrides: list[str], index: int) -> SourceSpan:
    column = _override_offsets(overrides)[index] + 1
    return SourceSpan(COMMAND_LINE, 1, column, 1, column + len(overrides[index]))


def _add_or_override(overrides: list[str], search_dirs: list[Path]) -> list[str]:
    """`key=value` sets a key whether or not the spec wrote it: most keys have defaults the
    YAML never mentions. Typos are still caught, by validation, located at the override.
    Config-group choices (`profile=prod`, `split@models.m.split=time`) stay as Hydra reads them.
    """
    groups = _group_names(search_dirs)
    out = []
    for text in overrides:
        key = text.split("=", 1)[0]
        if "=" in text and not key.startswith(("+", "~")) and "@" not in key and key not in groups:
            text = "++" + text
        out.append(text)
    return out


def _needs_hydra(data: dict[str, Any], overrides: list[str]) -> bool:
    defaults = data.get("defaults")
    return bool(overrides) or (defaults not in (None, [], ["_self_"]))


def _has_interpolation(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(_has_interpolation(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_interpolation(v) for v in value)
    return False


def compose(spec_path: Path, overrides: list[str]) -> Composed:
    spec = load_yaml_file(spec_path, display_path(spec_path))
    if spec.diagnostics:
        raise SpecError(spec.diagnostics)
    if not isinstance(spec.data, dict):
        raise SpecError(
            [
                Diagnostic(
                    codes.NOT_PLAIN_DATA,
                    "a spec must be a mapping of sections",
                    spec.spans.get(()),
                    "start with 'name:' and sections such as 'sources:' and 'models:'",
                )
            ]
        )
    composed = Composed(data=spec.data, spec=spec, overrides=list(overrides))
    malformed = _defaults_problems(spec)
    if malformed:
        raise SpecError(malformed)
    if "hydra" in spec.data:
        raise SpecError(
            [
                Diagnostic(
                    codes.UNKNOWN_KEY,
                    "'hydra' is reserved: mlcompile configures Hydra itself",
                    spec.key_spans.get(("hydra",)),
                    "remove the 'hydra' section",
                )
            ]
        )
    if _needs_hydra(spec.data, overrides):
        _compose_cached(composed)
    elif _has_interpolation(spec.data):
        composed.data = _resolve(composed, spec.data)
    composed.data.pop("defaults", None)
    return composed


_DEFAULTS_HINT = (
    "each entry is '_self_', a config name, or one 'group: option' pair "
    "(option: a name, a list of names, or null), e.g. '- model_preset@models.m: lgbm_binary'"
)


def _defaults_problems(spec: Located) -> list[Diagnostic]:
    """The shape Hydra's defaults list must have, checked first: Hydra reports a wrong
    shape with a bare ValueError that says neither where nor what to write."""
    defaults = spec.data.get("defaults")
    if defaults is None:  # absent, or an empty `defaults:` key
        return []
    if not isinstance(defaults, list):
        return [
            Diagnostic(
                codes.BAD_DEFAULTS,
                f"'defaults' must be a list, not {_kind(defaults)}",
                spec.spans.get(("defaults",)),
                _DEFAULTS_HINT,
            )
        ]
    found = []
    for index, entry in enumerate(defaults):
        problem = _entry_problem(entry)
        if problem:
            span = spec.spans.get(("defaults", index)) or spec.spans.get(("defaults",))
            found.append(
                Diagnostic(
                    codes.BAD_DEFAULTS, f"defaults[{index}]: {problem}", span, _DEFAULTS_HINT
                )
            )
    return found


def _entry_problem(entry: Any) -> str | None:
    if isinstance(entry, str):
        return None if entry.strip() else "an entry is empty"
    if not isinstance(entry, dict):
        return f"an entry is a name or a 'group: option' pair, not {_kind(entry)}"
    if len(entry) != 1:
        return f"an entry holds one 'group: option' pair, not {len(entry)}"
    ((group, option),) = entry.items()
    if not str(group).strip():
        return "the group name is empty"
    options = option if isinstance(option, list) else [option]
    if option is not None and not all(isinstance(o, str) and o.strip() for o in options):
        return f"the option of '{group}' must be a name, a list of names or null"
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), "a number"
    )


def _compose_cached(composed: Composed) -> None:
    from mlcompile.spec import cache

    root, search_dirs = composed.project_root, config_dirs(composed.project_root)
    key = cache.cache_key(composed.spec.text, composed.overrides, search_dirs)
    entry = cache.load(root, key) if key else None
    if entry is not None:
        composed.data = entry["data"]
        composed.groups = [
            GroupSource(tuple(g["package"]), Path(g["path"]), g["display"]) for g in entry["groups"]
        ]
        return
    from mlcompile.spec.compose_plain import compose_plain

    plain = compose_plain(composed.spec, composed.overrides, search_dirs)
    if plain is None:
        composed.data = _compose_with_hydra(composed)
    else:
        composed.data, composed.groups = plain.data, plain.groups
        composed._loaded.update(plain.loaded)
    from mlcompile.spec.secrets import holds_secret

    # a spec that validate will refuse for a credential must not leave a copy of it on disk
    if key and not holds_secret(composed.data):
        groups = [
            {"package": list(g.package), "path": str(g.path), "display": g.display}
            for g in composed.groups
        ]
        cache.store(root, key, {"data": composed.data, "groups": groups})


def config_dirs(project_root: Path) -> list[Path]:
    dirs = [project_root / "conf"]
    return [d for d in dirs if d.is_dir()] + [PRESETS_DIR]


def _compose_with_hydra(composed: Composed) -> dict[str, Any]:
    """Hydra's defaults list, config groups and override grammar, without Hydra's app config.

    `hydra.compose()` also builds Hydra's own job/launcher/logging config, which costs more
    than everything else `validate` does; the defaults-list machinery it runs is the part we
    want, so we drive it directly (stable across Hydra 1.3.x, which pyproject pins).
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.config_repository import CachingConfigRepository, ConfigRepository
    from hydra._internal.defaults_list import create_defaults_list
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_store import ConfigStore
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    search_dirs = config_dirs(composed.project_root)
    search_path = create_config_search_path(None)
    for index, folder in reversed(list(enumerate(search_dirs))):
        search_path.prepend(f"mlcompile-{index}", folder.as_uri())
    # Hydra reads only the defaults list from the primary config: handing it the whole spec
    # would have it deep-copy every SQL text and feature a dozen times. We merge the spec
    # itself at its `_self_` position below.
    ConfigStore.instance().store(
        name=_PRIMARY, node={"defaults": composed.spec.data.get("defaults") or []}
    )
    body = {k: v for k, v in composed.spec.data.items() if k != "defaults"}
    try:
        overrides = OverridesParser.create().parse_overrides(
            overrides=_add_or_override(composed.overrides, search_dirs)
        )
        repo = CachingConfigRepository(ConfigRepository(config_search_path=search_path))
        defaults = create_defaults_list(
            repo=repo,
            config_name=_PRIMARY,
            overrides_list=overrides,
            prepend_hydra=False,
            skip_missing=False,
        )
        loader = ConfigLoaderImpl(config_search_path=search_path)
        cfg = OmegaConf.create()
        for default in defaults.defaults:
            if default.primary:
                cfg.merge_with(OmegaConf.create(body))
                continue
            loaded = loader._load_single_config(default=default, repo=repo).config
            package = default.package or ""
            node = OmegaConf.select(loaded, package) if package else loaded
            if isinstance(node, DictConfig) and "defaults" in node:
                node.pop("defaults")
            cfg.merge_with(loaded)
        OmegaConf.set_struct(cfg, True)
        ConfigLoaderImpl._apply_overrides_to_config(defaults.config_overrides, cfg)
        composed.groups = [
            group
            for d in defaults.defaults
            if not d.primary and d.config_path
            for group in _group_source(d.config_path, d.package or "", search_dirs)
        ]
        data = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise SpecError([_hydra_diagnostic(exc, composed, search_dirs)]) from None
    except ValueError as exc:
        # Hydra's parsers raise bare ValueErrors too (a 5,000-digit integer in an override)
        raise SpecError([_value_error_diagnostic(exc, composed)]) from None
    assert isinstance(data, dict)
    return data  # type: ignore[return-value]


def _value_error_diagnostic(exc: ValueError, composed: Composed) -> Diagnostic:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid value"
    parser = OverridesParser.create()
    for index, text in enumerate(composed.overrides):
        try:
            parser.parse_overrides(overrides=_add_or_override([text], []))
        except Exception:  # the one that fails to parse on its own is the culprit
            return Diagnostic(
                codes.BAD_OVERRIDE,
                f"cannot apply override '{text[:80]}': {message}",
                override_span(composed.overrides, index),
                "integers must fit in 64 bits; quote text that is not a number",
            )
    return Diagnostic(
        codes.COMPOSE_FAILED,
        f"cannot compose the spec: {message}",
        composed.spec.spans.get(("defaults",)) or SourceSpan(composed.spec.file, 1, 1),
        _DEFAULTS_HINT,
    )


def _resolve(composed: Composed, data: dict[str, Any]) -> dict[str, Any]:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        resolved = OmegaConf.to_container(OmegaConf.create(data), resolve=True)
    except OmegaConfBaseException as exc:
        raise SpecError([_hydra_diagnostic(exc, composed, [])]) from None
    assert isinstance(resolved, dict)
    return resolved  # type: ignore[return-value]


def _group_source(config_path: str, package: str, search_dirs: list[Path]) -> list[GroupSource]:
    for base in search_dirs:
        candidate = base / f"{config_path}.yaml"
        if candidate.is_file():
            key = tuple(package.split(".")) if package else ()
            return [GroupSource(key, candidate, display_path(candidate))]
    return []


def _available(search_dirs: list[Path], group: str) -> list[str]:
    names: set[str] = set()
    for base in search_dirs:
        folder = base / group
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(names)


def _hydra_diagnostic(exc: Exception, composed: Composed, search_dirs: list[Path]) -> Diagnostic:
    """Turn a Hydra/OmegaConf exception into one located diagnostic with a hint."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    overrides = composed.overrides
    full_key = getattr(exc, "full_key", None)

    missing = re.search(r"Could not (?:find|load) '([^']+)/([^'/]+)'", str(exc))
    if missing:
        group, option = missing.group(1), missing.group(2)
        hint = did_you_mean(option, _available(search_dirs, group))
        span = _first_override_span(overrides, group) or _defaults_span(composed, group)
        return Diagnostic(
            codes.UNKNOWN_CONFIG,
            f"no config '{option}' in group '{group}'",
            span,
            hint or _groups_hint(search_dirs),
        )

    for index, text in enumerate(overrides):
        key = text.split("=", 1)[0].lstrip("+~")
        if key and (f"'{key}'" in str(exc) or f"'{text}'" in str(exc) or key in message):
            return Diagnostic(
                codes.BAD_OVERRIDE,
                f"cannot apply override '{text}': {message}",
                override_span(overrides, index),
                _group_hint(key, text, search_dirs) or _override_hint(composed, key, str(exc)),
            )

    if type(exc).__name__ in ("OverrideParseException", "GrammarParseError") and overrides:
        return Diagnostic(
            codes.BAD_OVERRIDE,
            f"cannot parse the overrides: {message}",
            override_span(overrides, 0),
            "overrides are key=value, +key=value to add, ~key to delete, group=option",
        )

    path: KeyPath = tuple(str(full_key).split(".")) if full_key else ()
    code = (
        codes.BAD_INTERPOLATION
        if "nterpolation" in type(exc).__name__ or "${" in message
        else codes.COMPOSE_FAILED
    )
    return Diagnostic(
        code, message, composed.span(path) if path else SourceSpan(composed.spec.file)
    )


def _group_hint(key: str, text: str, search_dirs: list[Path]) -> str | None:
    """`profile=prod` when the defaults list names no profile: Hydra can only add it."""
    if key not in _group_names(search_dirs):
        return None
    option = text.split("=", 1)[1] if "=" in text else ""
    known = _available(search_dirs, key)
    suggestion = did_you_mean(option, known) if option not in known else None
    add = (
        f"'{key}' is a config group the spec's defaults do not list: "
        f"write '+{text.lstrip('+')}' to add it"
    )
    return f"{add}; {suggestion}" if suggestion else add


def _group_names(search_dirs: list[Path]) -> set[str]:
    return {p.name for d in search_dirs if d.is_dir() for p in d.iterdir() if p.is_dir()}


def _override_hint(composed: Composed, key: str, error: str) -> str:
    parts = key.split(".")
    node: Any = composed.data
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            known = node.keys() if isinstance(node, dict) else []
            suggestion = did_you_mean(part, known)
            where = ".".join(parts[:depth]) or "the top level"
            if "+" in error or "append" in error.lower() or "not in struct" in error:
                base = f"'{part}' does not exist at {where}; prefix the override with '+' to add it"
            else:
                base = f"'{part}' does not exist at {where}"
            return f"{base}; {suggestion}" if suggestion else base
        node = node[part]
    if "Lexer" in error or "mismatched input" in error:
        return "quote values with spaces or symbols, e.g. key='a >= b' or key=['x >= 1']"
    return "check the override's key and value"


def _defaults_span(composed: Composed, group: str) -> SourceSpan | None:
    defaults = composed.spec.data.get("defaults")
    if not isinstance(defaults, list):
        return None
    for index, entry in enumerate(defaults):
        keys = entry.keys() if isinstance(entry, dict) else [entry]
        if any(
            str(k).lstrip("+").split("@")[0].removeprefix("optional ").strip() == group
            for k in keys
        ):
            return composed.spec.spans.get(("defaults", index))
    return None


def _first_override_span(overrides: list[str], group: str) -> SourceSpan | None:
    for index, text in enumerate(overrides):
        if text.lstrip("+~").split("=", 1)[0].split("@")[0] == group:
            return override_span(overrides, index)
    return None


def _groups_hint(search_dirs: list[Path]) -> str:
    groups = sorted(_group_names(search_dirs))
    return "config groups: " + ", ".join(groups)
