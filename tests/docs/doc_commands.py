"""Read the commands README.md and docs/ show, by the convention of docs/internals/doc-tests.md:
```console blocks, `$ ` prompts, output lines under each command, `# exit N`, and the two
HTML comments `<!-- doc-test setup: ... -->` and `<!-- doc-test skip: ... -->`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO

FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M
)
SETUP = re.compile(r"<!--\s*doc-test setup:\s*(?P<command>.*?)\s*-->", re.S)
SKIP = re.compile(r"<!--\s*doc-test skip:\s*(?P<reason>.*?)\s*-->\s*$", re.S)
EXIT = re.compile(r"#.*\bexit (\d+)\s*$")
# Words that start a shell command in a block that is not a console block: such a block
# must become one, or say why it is not run.
COMMAND_WORDS = {
    "mlcompile",
    "make",
    "pip",
    "python",
    "pytest",
    "zenml",
    "curl",
    "sha256sum",
    "export",
}


@dataclass(frozen=True)
class Command:
    """One `$ ` line: what bash runs, the exit code the page promises, the output it shows
    (each line found in order in what the command prints; `...` skips any lines)."""

    page: str
    line: int
    text: str
    exit_code: int = 0
    output: tuple[str, ...] = ()
    hidden: bool = False  # from a `doc-test setup` comment: run, not shown


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    info: str
    body: str
    skip_reason: str | None


@dataclass
class Page:
    path: Path
    commands: list[Command] = field(default_factory=list)
    skipped: list[Block] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.relative_to(REPO).as_posix()


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(REPO).as_posix()
    found = []
    for match in FENCE.finditer(text):
        skip = SKIP.search(text[: match.start()].rstrip(" "))
        body = "\n".join(line[len(match["indent"]) :] for line in match["body"].splitlines())
        found.append(
            Block(
                name,
                _line(text, match.start()),
                match["info"].strip(),
                body,
                skip["reason"] if skip else None,
            )
        )
    return found


def shows_commands(block: Block) -> bool:
    """A block a reader would type from: a shell block, or lines starting with a command."""
    if block.info in ("console", "sh", "bash", "shell"):
        return True
    if block.info:
        return False
    first_words = {
        line.split()[0].rsplit("/", 1)[-1] for line in block.body.splitlines() if line.strip()
    }
    return bool(first_words & COMMAND_WORDS)


def console_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    current: list[str] | None = None
    start, text = 0, ""

    def close() -> None:
        if current is not None:
            expected = EXIT.search(text)
            commands.append(
                Command(
                    block.page,
                    start,
                    text,
                    int(expected[1]) if expected else 0,
                    tuple(line for line in current if line.strip()),
                )
            )

    for number, line in enumerate(block.body.splitlines(), start=block.line + 1):
        if line.startswith("$ "):
            close()
            current, start, text = [], number, line[2:].strip()
        elif current is not None:
            current.append(line)
    close()
    return commands


def read_page(path: Path) -> Page:
    """The page's commands in the order a reader meets them, hidden setup ones included."""
    text = path.read_text(encoding="utf-8")
    page = Page(path)
    fences = [range(m.start(), m.end()) for m in FENCE.finditer(text)]
    events: list[tuple[int, list[Command]]] = [
        (
            _line(text, m.start()),
            [Command(page.name, _line(text, m.start()), m["command"], hidden=True)],
        )
        for m in SETUP.finditer(text)
        if not any(m.start() in fence for fence in fences)  # an example of the comment
    ]
    for block in blocks(path):
        if block.skip_reason is not None:
            page.skipped.append(block)
        elif block.info == "console":
            events.append((block.line, console_commands(block)))
    for _, commands in sorted(events, key=lambda event: event[0]):
        page.commands.extend(commands)
    return page


def output_matches(expected: tuple[str, ...], printed: str) -> str | None:
    """None when every expected line is found, in order, in `printed` (spaces collapsed,
    `…` inside a line matching anything); else the first line that was not found."""
    lines = [" ".join(line.split()) for line in printed.splitlines()]
    position = 0
    for want in expected:
        if want.strip() == "...":
            continue
        pattern = re.compile(
            ".*".join(re.escape(part) for part in " ".join(want.split()).split("…"))
        )
        for index in range(position, len(lines)):
            if pattern.search(lines[index]):
                position = index + 1
                break
        else:
            return want
    return None
