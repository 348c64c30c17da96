"""The one error shape every refused request gets, whatever refused it:

    {"errors": [{"row": 3, "column": "distance", "kind": "range", "message": "..."}]}

`row` is the index in the request's `rows` and `column` the input column; either is null when
the problem is not about one row or one column (a body that is not JSON, a request over the
size limit). Clients can rely on these four keys; `kind` is a short stable word, `message` is
for people.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    row: int | None
    column: str | None
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "kind": self.kind, "message": self.message}


# a response listing every bad value of 10,000 rows would be larger than the request
MAX_PROBLEMS = 100


class Refused(Exception):
    """A request answered with `status` and its problems instead of predictions: the first
    MAX_PROBLEMS of them, then one that counts the rest."""

    def __init__(self, status: int, problems: Sequence[Problem], total: int | None = None) -> None:
        super().__init__(f"{status}: {total or len(problems)} problems")
        self.status = status
        self.problems = capped(problems, total)


def capped(problems: Sequence[Problem], total: int | None = None) -> list[Problem]:
    """The first MAX_PROBLEMS problems, then one that counts the rest: `total` problems in
    all, when `problems` lists only the first of them."""
    shown = list(problems[:MAX_PROBLEMS])
    more = (len(problems) if total is None else total) - len(shown)
    if more > 0:
        shown.append(Problem(None, None, "more", f"{more} more problems not listed"))
    return shown


def refused(status: int, kind: str, message: str) -> Refused:
    """A refusal about the whole request rather than one value."""
    return Refused(status, [Problem(None, None, kind, message)])


def error_body(problems: Sequence[Problem]) -> bytes:
    return json.dumps({"errors": [p.to_dict() for p in problems]}).encode("utf-8")
