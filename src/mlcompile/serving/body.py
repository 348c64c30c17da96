"""The body of POST /predict read straight into a model's input columns.

msgspec decodes the body into one small struct a row, holding only the signature's columns,
each typed with the JSON types its dtype takes (`InputColumn.json`): one pass in C that skips
a row's other keys and builds no dict for it. `inputs.read_values` then checks and reads each
column as `read_rows` does. For 10,000 flights rows this takes about a third of the time of
orjson's dicts and `read_rows` after them.

A body this does not take, for any reason, is read again by `request.parse_rows` and
`inputs.read_rows`. They take what msgspec refuses (NaN, which Python's json module writes
for a missing float; 1.0 for an integer) and word every problem, so a body reads the same
either way (tests/serving/test_inputs.py reads each of its bodies both ways).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import msgspec

from .inputs import InputColumn, read_rows, read_values
from .request import parse_rows

Values = dict[str, list[Any]]  # each signature column's values, one a row


class BodyReader:
    """Reads request bodies for the input columns of one model version."""

    def __init__(self, columns: tuple[InputColumn, ...]) -> None:
        self.columns = columns
        fields = [f"c{i}" for i in range(len(columns))]
        self._getters = [(c, attrgetter(f)) for c, f in zip(columns, fields, strict=True)]
        self._decoder: msgspec.json.Decoder[Any] | None
        try:
            row = msgspec.defstruct(
                "Row",
                [(field, column.json) for field, column in zip(fields, columns, strict=True)],
                # a column's name may be any text, a field's must be an identifier
                rename={f: column.name for f, column in zip(fields, columns, strict=True)},
                # it holds JSON scalars only, so it can be in no cycle for the collector
                gc=False,
            )
        except ValueError:  # a name msgspec cannot match, with a quote or a control character
            self._decoder = None
        else:
            body = msgspec.defstruct("Body", [("rows", list[row])])  # type: ignore[valid-type]
            self._decoder = msgspec.json.Decoder(body)

    def read(self, body: bytes, max_rows: int) -> tuple[int, Values]:
        """The number of rows and each column's values, None where missing. Raises Refused
        (413 or 422) as `parse_rows` and `read_rows` do."""
        typed = self.typed(body, max_rows)
        if typed is not None:
            return typed
        rows = parse_rows(body, max_rows)
        return len(rows), read_rows(rows, self.columns)

    def typed(self, body: bytes, max_rows: int) -> tuple[int, Values] | None:
        """The body read by msgspec alone, or None when `read` must read it again."""
        if self._decoder is None:
            return None
        try:
            rows = self._decoder.decode(body).rows
        except msgspec.DecodeError:  # or its subclass ValidationError
            return None
        if not rows or len(rows) > max_rows:
            return None
        values: Values = {}
        for column, get in self._getters:
            read = read_values(list(map(get, rows)), column)
            if read is None:
                return None
            values[column.name] = read
        return len(rows), values
