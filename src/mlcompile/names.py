"""Names that become keys in stores: the one rule the spec, the registry and the CLI share.

A registry alias is a key of `aliases.json` and a word on command lines (`MODEL@ALIAS`),
so it is short, starts with a letter (never all digits: `MODEL@3` means version 3) and
holds only letters, digits, '_' and '-': nothing that could read as a path, a version or a
flag.
"""

from __future__ import annotations

import re

ALIAS_MAX_LENGTH = 63
_ALIAS_BODY = rf"[A-Za-z][A-Za-z0-9_-]{{0,{ALIAS_MAX_LENGTH - 1}}}"
# Anchored for pydantic and JSON Schema, whose `$` is the end of the text.
ALIAS_PATTERN = f"^{_ALIAS_BODY}$"
ALIAS_RULE = (
    f"an alias starts with a letter, then letters, digits, '_' or '-', "
    f"at most {ALIAS_MAX_LENGTH} characters (e.g. production, staging, champion-2)"
)
_ALIAS = re.compile(_ALIAS_BODY)


def alias_problem(alias: str) -> str | None:
    """Why `alias` cannot be a registry alias, with the rule, or None when it can."""
    if not alias:
        reason = "it is empty"
    elif len(alias) > ALIAS_MAX_LENGTH:
        reason = f"it has {len(alias)} characters, more than {ALIAS_MAX_LENGTH}"
    elif not _ALIAS.fullmatch(alias):
        reason = "it is not a word of the allowed characters"
    else:
        return None
    return f"{reason}; {ALIAS_RULE}"
