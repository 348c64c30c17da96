"""Custom features the broken specs name: project files, which need no grant."""

from typing import Any


def per_mile(frame: Any) -> Any:
    return frame["dep_delay"] / frame["distance"]
