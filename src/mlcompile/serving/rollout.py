"""Safe rollout: which version answers a request, and which scores it in the shadow.

- `--canary ALIAS=PERCENT`: PERCENT of the requests are answered by the version at ALIAS,
  the rest by the served one. A request that sends `X-Routing-Key` (a user or session id)
  goes to the same side every time: the key's SHA-256 picks one of 10,000 buckets, so the split
  holds for any set of keys and needs no state. Without the header, each request draws.
- `--shadow ALIAS`: the version at ALIAS scores every request as well; its predictions are
  logged (`shadow_*` columns, `shadow_version`) and never returned. A shadow that fails on a
  request is logged and costs the answer nothing.

Both aliases are followed like the served one, so `registry promote` moves them live.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from mlcompile.errors import UsageError
from mlcompile.names import alias_problem

ROUTING_HEADER = "x-routing-key"


@dataclass(frozen=True)
class Canary:
    alias: str
    percent: float

    def takes(self, key: str | None) -> bool:
        """Whether the canary answers a request with this routing key (None: a random draw)."""
        if key is None:
            return random.random() * 100 < self.percent
        bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
        return (bucket % 10_000) / 100 < self.percent


def parse_canary(text: str) -> Canary:
    """ALIAS=PERCENT, PERCENT a number from 0 to 100. Raises UsageError otherwise."""
    alias, sep, percent = text.partition("=")
    try:
        share = float(percent)
    except ValueError:
        share = -1.0
    if not sep or not 0 <= share <= 100:
        raise UsageError(f"--canary {text!r}: expected ALIAS=PERCENT, such as staging=10")
    check_alias(alias, "--canary")
    return Canary(alias, share)


def check_alias(alias: str, option: str) -> None:
    problem = alias_problem(alias)
    if problem is not None:
        raise UsageError(f"{option} {alias!r}: {problem}")
