"""Credentials only by reference: a secret-looking spec value fails validate (E313), located,
and nothing mlcompile writes ever holds it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlcompile.spec.secrets import looks_like_secret

# Secret-shaped test values (AWS's documented example key id, made-up passwords).
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
PASSWORD = "hunter2Xq9"


def _edit(spec: Path, old: str, new: str) -> int:
    """Replace the first line starting with `old`; the 1-based line number it is on."""
    lines = spec.read_text("utf-8").splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(old))
    lines[index] = new + "\n"
    spec.write_text("".join(lines), "utf-8")
    return index + 1


@pytest.mark.parametrize(
    ("line", "secret", "what"),
    [
        (f'description: "loaded with key {KEY_ID}"', KEY_ID, "an AWS access key id"),
        (
            f'description: "see s3://analyst:{PASSWORD}@bucket/flights"',
            PASSWORD,
            "a password in a URL",
        ),
        (
            f'description: "https://host/f.csv?X-Amz-Signature={PASSWORD}"',
            PASSWORD,
            "a credential in a URL query",
        ),
    ],
)
def test_a_secret_fails_validate_located_and_never_reaches_the_build(
    flights_project: Path, cli: Callable[..., Result], line: str, secret: str, what: str
) -> None:
    spec = flights_project / "mlcompile.yaml"
    number = _edit(spec, "description:", line)
    result = cli("validate", spec, cwd=flights_project)
    assert result.exit_code == 2, result.output
    assert re.search(rf"mlcompile\.yaml:{number}:\d+: error E313: .*{what}", result.output)
    assert "AWS_ACCESS_KEY_ID" in result.output  # the hint says where credentials go
    built = cli("build", spec, "--backend", "kfp", "--out", "build", cwd=flights_project)
    assert built.exit_code == 2, built.output
    leaked = [
        str(path.relative_to(flights_project))
        for path in flights_project.rglob("*")
        if path.is_file() and path != spec and secret.encode() in path.read_bytes()
    ]
    assert leaked == []


def test_secrets_by_reference_and_ordinary_values_pass(
    flights_project: Path, cli: Callable[..., Result]
) -> None:
    spec = flights_project / "mlcompile.yaml"
    text = spec.read_text("utf-8")
    spec.write_text(
        text
        + "backends:\n  kfp:\n    pipeline_root: s3://bucket/kfp\n    secrets:\n"
        + "      - {secret_name: s3-creds, env: {AWS_SECRET_ACCESS_KEY: secret_key, TOKEN: token}}\n",
        "utf-8",
    )
    result = cli("validate", spec, cwd=flights_project)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("path", "value", "found"),
    [
        (("models", "m", "params", "api_key"), "abc123", True),
        (("sources", "s", "password"), "x", True),
        (("settings", "aws_secret_access_key"), "wJalrXUtnFEMI", True),
        (("backends", "kfp", "secret_name"), "creds", False),
        (("sources", "s", "token_env"), "MY_TOKEN", False),
        (("sources", "s", "path"), "s3://bucket/data/flights.parquet", False),
        (("sources", "s", "path"), "https://example.org/data.csv?version=2", False),
        (("description",), "-----BEGIN RSA PRIVATE KEY-----", True),
        (("description",), "tokens are counted per model", False),
    ],
)
def test_what_looks_like_a_secret(path: tuple[str, ...], value: str, found: bool) -> None:
    assert (looks_like_secret(path, value) is not None) is found
