"""The body of POST /predict read into rows (serving/request.py), and the refusals of a body
that is not `{"rows": [object, ...]}`, over the API in the one error shape."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mlcompile.serving.problems import Refused
from mlcompile.serving.request import parse_rows


def _refused(body: bytes, max_rows: int = 10) -> Refused:
    with pytest.raises(Refused) as caught:
        parse_rows(body, max_rows)
    return caught.value


def test_rows_of_objects_are_read() -> None:
    assert parse_rows(b'{"rows": [{"a": 1}, {"a": NaN}], "other": 1}', 2)[0] == {"a": 1}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "not valid JSON"),
        (b'{"rows": [', "not valid JSON"),
        (b"\xff\xfe{", "not valid JSON"),  # not UTF-8
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[]", 'must be {"rows": [object, ...]}'),
        (b"{}", 'must be {"rows": [object, ...]}'),
        (b'{"rows": []}', "at least one row"),
        (b'{"rows": {"a": 1}}', 'must be {"rows"'),
    ],
)
def test_a_body_that_is_not_rows_is_422(body: bytes, says: str) -> None:
    refused = _refused(body)
    assert refused.status == 422
    (problem,) = refused.problems
    assert (problem.row, problem.column, problem.kind) == (None, None, "body")
    assert says in problem.message


def test_rows_that_are_not_objects_are_named() -> None:
    refused = _refused(b'{"rows": [{"a": 1}, 1, [2], null]}')
    assert refused.status == 422
    assert [(p.row, p.column) for p in refused.problems] == [(1, None), (2, None), (3, None)]
    assert refused.problems[0].message == "a row must be a JSON object, not int"


def test_more_rows_than_the_limit_is_413() -> None:
    assert len(parse_rows(b'{"rows": [{}, {}, {}]}', 3)) == 3
    refused = _refused(b'{"rows": [{}, {}, {}, {}]}', max_rows=3)
    assert refused.status == 413
    assert "4 rows is more than this server takes in one request (3, set by --max-rows)" in (
        refused.problems[0].message
    )


@pytest.mark.parametrize(
    "body", [b"{}", b'{"rows": []}', b'{"rows": "x"}', b'{"rows": [1]}', b"not json"]
)
def test_malformed_bodies_get_the_error_shape(client: TestClient, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert set(error) == {"row", "column", "kind", "message"}
    assert error["kind"] == "body"
