"""The body of POST /predict read into its rows: `{"rows": [object, ...]}`, 1 to `max_rows` of
them. Anything else is refused in the shape of `problems`: 422 for a body that is not that
(not JSON, nested too deep for the parser, no `rows`, a row that is not an object), 413 for
more rows than the server takes.

This is the reading of the bodies `body.BodyReader`'s typed pass does not take, and so the one
that words their problems; it is Python's json module, which reads what orjson would not or
would read inexactly: NaN (which the json module writes for a missing float), a lone
surrogate escape, and an integer beyond 64 bits, which orjson turns into a float."""

from __future__ import annotations

import json
from typing import Any

from .problems import Problem, Refused, refused


def _document(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise refused(422, "body", f"the body is not valid JSON: {detail}") from None


def parse_rows(body: bytes, max_rows: int) -> list[dict[str, Any]]:
    document = _document(body)
    rows = document.get("rows") if isinstance(document, dict) else None
    if not isinstance(rows, list) or not rows:
        raise refused(422, "body", 'the body must be {"rows": [object, ...]} with at least one row')
    if len(rows) > max_rows:
        raise refused(
            413,
            "too_large",
            f"{len(rows):,} rows is more than this server takes in one request "
            f"({max_rows:,}, set by --max-rows): split the rows into several requests",
        )
    not_objects = [
        Problem(index, None, "body", f"a row must be a JSON object, not {type(row).__name__}")
        for index, row in enumerate(rows)
        if not isinstance(row, dict)
    ]
    if not_objects:
        raise Refused(422, not_objects)
    return rows
