"""What looks like a credential among a spec's values.

The spec's check (E313, `checks/credentials.py`) refuses such values, and the composition
cache keeps no copy of a spec that holds one. Kept apart from the checks, which need
pydantic, so that composing a spec stays light.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlcompile.spec.yaml_loader import KeyPath

_FORMATS = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")),
    ("a password in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)),
    (
        "a credential in a URL query",
        re.compile(
            r"[?&](?:[a-z_-]*(?:secret|token|password|signature|sig|api_?key|access_?key))=[^&\s]+",
            re.I,
        ),
    ),
)
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:password|passwd|secret|token|api_?key|access_?key|secret_?key|private_?key"
    r"|credentials?|session_?token|client_?secret)$",
    re.I,
)
# Keys that hold references to a secret kept elsewhere, and the section made of them.
_REFERENCE_SUFFIXES = ("_name", "_ref", "_env", "_var", "_file", "_path")
_REFERENCE_SECTION = "secrets"


def holds_secret(data: Any) -> bool:
    return any(looks_like_secret(path, value) for path, value in strings(data))


def looks_like_secret(path: KeyPath, value: str) -> str | None:
    """What kind of credential `value` at `path` looks like, or None."""
    for what, pattern in _FORMATS:
        if pattern.search(value):
            return what
    key = str(path[-1]) if path else ""
    if value and _SECRET_KEY.search(key) and not key.lower().endswith(_REFERENCE_SUFFIXES):
        return f"a credential (the key '{key}' names one)"
    return None


def strings(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Every text value in `value`, with its key path (the names under `backends.<name>.secrets`
    are references, left out)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == _REFERENCE_SECTION and len(path) == 2 and path[0] == "backends":
                continue
            yield from strings(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, (*path, index))
