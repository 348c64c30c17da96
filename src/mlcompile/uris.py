"""Object-storage URIs where the spec takes a path: which schemes, and how to read them.

`s3://`, `gs://`, `az://` (and `abfs://`), `file://` and `https://` (read only) go through
fsspec and its s3fs, gcsfs and adlfs plug-ins (the `s3`, `gcs` and `azure` extras), imported
only when a URI is read. Credentials come from each filesystem's own environment or config
(AWS_* variables, ~/.aws, workload identity, ...), never from the spec.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from typing import Any

SCHEMES = ("s3", "gs", "az", "abfs", "file", "https")
READ_ONLY = frozenset({"https"})
# object stores whose filesystems can create an object only if it is absent (the registry)
OBJECT_STORES = ("s3", "gs", "az", "abfs")
_URI = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.I)
_EXTRAS = {"s3": "s3", "gs": "gcs", "az": "azure", "abfs": "azure"}
_CHUNK = 1 << 20


def scheme(value: str) -> str | None:
    """The URI scheme of `value` (lowercase), or None for a plain path."""
    found = _URI.match(value)
    return found.group(1).lower() if found else None


def is_uri(value: str) -> bool:
    return scheme(value) is not None


def problem(value: str) -> str | None:
    """Why `value` is not a URI mlcompile reads, or None."""
    found = scheme(value)
    if found is None or found in SCHEMES:
        return None
    return f"the URI scheme '{found}://' is not supported (use {', '.join(SCHEMES)})"


def local_path(uri: str) -> str:
    """The local path a file:// URI names (file:///abs/path or file://localhost/abs/path)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise ValueError(f"'{uri}' names a file on another host ({parsed.netloc})")
    return urllib.parse.unquote(parsed.path)


def extra(uri: str) -> str:
    """The mlcompile extra that brings the filesystem of `uri`."""
    return _EXTRAS.get(scheme(uri) or "", "s3")


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem of `uri` and the path on it."""
    try:
        import fsspec  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise ImportError("reading URIs needs fsspec: pip install 'mlcompile[s3]'") from None
    try:
        return fsspec.core.url_to_fs(uri)  # type: ignore[no-any-return]
    except ImportError as exc:
        raise ImportError(f"{exc} (pip install 'mlcompile[{extra(uri)}]')") from None


def read_bytes(uri: str) -> tuple[bytes, str]:
    """The object's bytes and their sha256, hashed as they stream in."""
    fs, path = filesystem(uri)
    digest = hashlib.sha256()
    parts = []
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            parts.append(chunk)
    return b"".join(parts), digest.hexdigest()


def version(uri: str) -> str:
    """What changes when the object changes, without reading it: the store's ETag (or
    generation, or checksum) with the size; a streamed sha256 when the store offers none."""
    fs, path = filesystem(uri)
    info = fs.info(path)
    for key in ("ETag", "etag", "generation", "md5Hash", "content_md5", "checksum"):
        if info.get(key):
            return f"{key}:{str(info[key]).strip(chr(34))}:{info.get('size')}"
    return "sha256:" + read_bytes(uri)[1]
