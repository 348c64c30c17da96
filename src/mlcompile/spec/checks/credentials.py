"""Credentials only by reference: a spec value that looks like a secret is refused (E313).

A spec is committed, composed into plan.json and copied into every emitted file, so a key
written into it leaks everywhere. Storage credentials come from the filesystem's own
environment or config (AWS_* variables, ~/.aws, workload identity) and orchestrator secrets
from `backends.<name>.secrets`, which name a cluster secret, never hold one. Two signs are
checked: a value in a known credential format (anywhere, descriptions included), and any
value under a key that names a credential (`password`, `token`, `secret_access_key`, ...).
"""

from __future__ import annotations

from mlcompile import codes
from mlcompile.spec.checks.context import Context
from mlcompile.spec.secrets import looks_like_secret, strings

# Values a field's own model already refuses credentials in (E203), reported once.
_CHECKED_BY_FIELD = frozenset({("tracking", "mlflow", "tracking_uri")})
HINT = (
    "keep credentials out of the spec: storage reads them from its own environment or config "
    "(AWS_ACCESS_KEY_ID, ~/.aws, workload identity; GOOGLE_APPLICATION_CREDENTIALS; "
    "AZURE_STORAGE_*), orchestrator steps from backends.<name>.secrets (a cluster secret's name)"
)


def check(ctx: Context) -> None:
    for path, value in strings(ctx.composed.data):
        if path in _CHECKED_BY_FIELD:
            continue
        found = looks_like_secret(path, value)
        if found is not None:
            where = ".".join(str(p) for p in path)
            ctx.error(codes.SECRET_IN_SPEC, f"'{where}' holds what looks like {found}", path, HINT)
