"""What composing can get silently wrong, said after composition: an override that names an
entry no file declares (a typo that would create a half-empty entry), and a selected
profile whose values the spec overrides (a profile placed before `_self_`)."""

from __future__ import annotations

from typing import Any

from mlcompile.errors import Diagnostic, did_you_mean, printable
from mlcompile.spec.compose import Composed, override_span
from mlcompile.spec.yaml_loader import KeyPath

# The sections whose keys are names the spec gives its entries, and what one entry is called.
NAMED_SECTIONS = {
    "sources": "source",
    "schemas": "schema",
    "features": "feature",
    "models": "model",
    "gates": "gate",
    "deployments": "deployment",
    "monitoring": "monitor",
}
PROFILE_GROUP = "profile"


def _declared(composed: Composed, path: KeyPath) -> bool:
    """Whether the spec or a config-group file wrote `path` (not only an override)."""
    if path in composed.spec.spans:
        return True
    for group in composed.groups:
        package = group.package
        if len(package) >= len(path):
            if package[: len(path)] == path:
                return True
        elif (
            path[: len(package)] == package and path[len(package) :] in composed._load(group).spans
        ):
            return True
    return False


def unknown_entries(composed: Composed) -> list[Diagnostic]:
    """`models.biker.num_boost_round=10` when the spec has no model 'biker': one error at the
    override, instead of the missing keys of the entry the override would create.
    `+models.biker...` says the entry is meant to be new, and is left alone."""
    found = []
    for index, text in enumerate(composed.overrides):
        if "=" not in text or text.startswith(("+", "~")):
            continue
        key = tuple(text.split("=", 1)[0].split("."))
        if len(key) < 3 or key[0] not in NAMED_SECTIONS or "@" in text.split("=", 1)[0]:
            continue
        section, name = key[0], key[1]
        if _declared(composed, (section, name)):
            continue
        entries = composed.data.get(section)
        known = [n for n in entries if n != name] if isinstance(entries, dict) else []
        noun = NAMED_SECTIONS[section]
        suggestion = did_you_mean(name, known)
        close = suggestion is not None and suggestion.startswith("did you mean")
        found.append(
            Diagnostic(
                "E405",
                f"no {noun} '{printable(name)}'" + (f" ({suggestion})" if close else ""),
                override_span(composed.overrides, index),
                (f"{section} of the spec: " + ", ".join(map(printable, sorted(known))))
                if close
                else suggestion
                or f"the spec declares no {section}; write '+{text[:80]}' to add an entry",
                path=".".join(key),
            )
        )
    return found


def _leaves(data: Any, prefix: KeyPath = ()) -> list[tuple[KeyPath, Any]]:
    if isinstance(data, dict) and data:
        return [leaf for k, v in data.items() for leaf in _leaves(v, (*prefix, str(k)))]
    return [(prefix, data)]


def _lookup(data: Any, path: KeyPath) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


def overridden_profiles(composed: Composed) -> list[Diagnostic]:
    """A profile's value that the spec's own value replaced: the profile came before
    `_self_` in the defaults list, so it does nothing for that key. Reported at both keys."""
    found = []
    overridden_by_command_line = {
        tuple(text.split("=", 1)[0].lstrip("+~").split(".")) for text in composed.overrides
    }
    for group in composed.groups:
        if group.path.parent.name != PROFILE_GROUP:
            continue
        profile = group.path.stem
        located = composed._load(group)
        for rest, value in _leaves(located.data):
            path = (*group.package, *rest)
            in_spec, spec_value = _lookup(composed.spec.data, path)
            _, final = _lookup(composed.data, path)
            if (
                not in_spec
                or spec_value == value
                or final != spec_value
                or any(path[: len(k)] == k for k in overridden_by_command_line)
            ):
                continue
            dotted = ".".join(map(str, path))
            hint = "list the profile after '_self_' in 'defaults' so that it wins (docs/presets.md)"
            found.append(
                Diagnostic(
                    "W201",
                    f"'{dotted}' is {spec_value!r} here, so profile '{profile}' (which sets "
                    f"{value!r}) has no effect on it",
                    composed.spec.key_spans.get(path) or composed.spec.spans.get(path),
                    hint,
                    severity="warning",
                    path=dotted,
                )
            )
            found.append(
                Diagnostic(
                    "W201",
                    f"profile '{profile}' sets '{dotted}' to {value!r}, but the spec sets "
                    f"{spec_value!r}, which wins",
                    located.key_spans.get(rest) or located.spans.get(rest),
                    hint,
                    severity="warning",
                    path=dotted,
                )
            )
    return found
