"""Credentials only by reference: a spec value that looks like a secret is refused (E313).

A spec is committed, composed into plan.json and copied into every emitted file, so a key
written into it leaks everywhere. Storage credentials come from the filesystem's own
environment or config (AWS_* variables, ~/.aws, workload identity) and orchestrator secrets
from `backends.<name>.secrets`, which name a cluster secret, never hold one. Two signs are
checked: a value in a known credential format (anywhere, descriptions included), and any
value under a key that names a credential (`password`, `token`, `secret_access_key`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlcompile import codes
from mlcompile.spec.checks.context import Context
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
# Values a field's own model already refuses credentials in (E203), reported once.
_CHECKED_BY_FIELD = frozenset({("tracking", "mlflow", "tracking_uri")})
HINT = (
    "keep credentials out of the spec: storage reads them from its own environment or config "
    "(AWS_ACCESS_KEY_ID, ~/.aws, workload identity; GOOGLE_APPLICATION_CREDENTIALS; "
    "AZURE_STORAGE_*), orchestrator steps from backends.<name>.secrets (a cluster secret's name)"
)


def check(ctx: Context) -> None:
    for path, value in _strings(ctx.composed.data, ()):
        if path in _CHECKED_BY_FIELD:
            continue
        found = looks_like_secret(path, value)
        if found is not None:
            where = ".".join(str(p) for p in path)
            ctx.error(codes.SECRET_IN_SPEC, f"'{where}' holds what looks like {found}", path, HINT)


def holds_secret(data: Any) -> bool:
    return any(looks_like_secret(path, value) for path, value in _strings(data, ()))


def looks_like_secret(path: KeyPath, value: str) -> str | None:
    """What kind of credential `value` at `path` looks like, or None."""
    for what, pattern in _FORMATS:
        if pattern.search(value):
            return what
    key = str(path[-1]) if path else ""
    if value and _SECRET_KEY.search(key) and not key.lower().endswith(_REFERENCE_SUFFIXES):
        return f"a credential (the key '{key}' names one)"
    return None


def _strings(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == _REFERENCE_SECTION and len(path) == 2 and path[0] == "backends":
                continue
            yield from _strings(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))
