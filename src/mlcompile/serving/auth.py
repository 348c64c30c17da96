"""Who may call: a bearer token, required of every request but GET /health once one is set.

`serve` listens on 127.0.0.1 unless told otherwise, where only this machine's users reach it.
With `--host` set to any other address, it refuses to start without `--token-env NAME`, the
environment variable holding the token (an environment variable, so the token is in neither
the command line, which `ps` shows, nor the shell history). A request without
`Authorization: Bearer <token>`, or with another token, is answered 401 in the `problems`
shape before its body is read. /health stays open for load balancers and probes.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import MutableMapping
from typing import Any

from mlcompile.errors import UsageError

from .limits import App, Receive, Send, send_problem

LOOPBACK = "127.0.0.1"
OPEN_PATHS = frozenset({"/health"})


def token_from(host: str, token_env: str | None) -> str | None:
    """The token to require, or None. Raises UsageError when `host` is not loopback and no
    token is given, or the variable is unset or empty."""
    if token_env is None:
        if host != LOOPBACK:
            raise UsageError(
                f"--host {host} lets other machines call this server: give --token-env NAME, "
                "an environment variable holding the bearer token callers must send "
                "(or listen on 127.0.0.1)"
            )
        return None
    token = os.environ.get(token_env, "")
    if not token.strip():
        raise UsageError(
            f"--token-env {token_env}: the environment variable {token_env} is unset or empty"
        )
    return token


def _presented(scope: MutableMapping[str, Any]) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = bytes(value).partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" else None
    return None


class BearerToken:
    """ASGI middleware: 401 unless the request carries the token."""

    def __init__(self, app: App, token: str) -> None:
        self.app = app
        self.token = token.encode("utf-8")

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        presented = _presented(scope)
        if presented is not None and hmac.compare_digest(presented, self.token):
            await self.app(scope, receive, send)
            return
        message = (
            "this server requires 'Authorization: Bearer <token>'"
            if presented is None
            else "the bearer token is not this server's"
        )
        await send_problem(send, 401, "unauthorized", message, (b"www-authenticate", b"Bearer"))
