"""`python -m textgen_core.corpus`: find Project Gutenberg books to train on, check collections.

    python -m textgen_core.corpus search --author Austen --language en [--title T] [--subject S]
    python -m textgen_core.corpus check women-writers

`search` prints the matching text ebooks (id, title, author, language) in catalogue order and
the `--corpus` spec that trains on them; `check` compares a named collection with the catalogue
and names every book whose id holds another title or author. Both fetch the catalogue when it is
not cached or older than a week (gutenberg_catalogue.py); `--refresh` fetches it now.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from rich.console import Console
from rich.table import Table

from runtime.command_line import Parser
from runtime.terminal_text import plain
from textgen_core.data.gutenberg_catalogue import (
    DEFAULT_MAX_BOOKS,
    PREFIX,
    SEARCH_FIELDS,
    Query,
    collection_mismatches,
    load_catalogue,
    mismatch_error,
    search,
    shown,
)
from textgen_core.data.gutenberg_collections import COLLECTIONS
from textgen_core.errors import CorpusError
from textgen_core.training.cli_outcome import exit_code

DEFAULT_LIMIT = 50


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m textgen_core.corpus",
                    description="Search Project Gutenberg's catalogue; check collections.")
    commands = parser.add_subparsers(dest="command", required=True)
    find = commands.add_parser("search", help="list the text ebooks matching every condition given")
    find.add_argument("--author", metavar="NAME", help="part of an author's name (case and accents ignored)")
    find.add_argument("--title", metavar="TEXT", help="part of the title")
    find.add_argument("--language", metavar="CODE", help="a language code, e.g. en, fr, de")
    find.add_argument("--subject", metavar="TEXT", help="part of a subject or bookshelf")
    find.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                      help="rows to print (default %(default)s)")
    check = commands.add_parser("check", help="check a named collection against the catalogue")
    check.add_argument("collection", choices=sorted(COLLECTIONS), help="the named collection to check")
    for sub in (find, check):
        sub.add_argument("--refresh", action="store_true", help="fetch the catalogue now")
        sub.add_argument("--gutenberg-mirror", metavar="URL",
                         help="Project Gutenberg mirror (default $TEXTGEN_GUTENBERG_MIRROR, else "
                              "https://www.gutenberg.org/)")
    return parser


def _search(args: argparse.Namespace) -> int:
    conditions = {name: getattr(args, name) for name in SEARCH_FIELDS if getattr(args, name)}
    if not conditions:
        raise CorpusError("search needs at least one of --author, --title, --language, --subject")
    if args.limit <= 0:
        raise CorpusError(f"--limit must be a positive integer, got {args.limit}")
    bad = [value for value in conditions.values() if "," in value or "=" in value]
    if bad:
        # A --corpus spec separates conditions with commas, so a value must not hold one.
        raise CorpusError(f"a search value cannot contain ',' or '=': {shown(bad[0])!r}")
    query = Query(**conditions)
    found = search(load_catalogue(args.gutenberg_mirror, refresh=args.refresh), query)
    if not found:
        raise CorpusError(f"no text ebook in the Project Gutenberg catalogue matches "
                          f"{shown(query.describe())}")
    table = Table(title=plain(f"{len(found)} text ebook(s) match {shown(query.describe())}"),
                  title_justify="left")
    for column in ("id", "title", "author", "language"):
        table.add_column(column, overflow="fold")
    for entry in found[: args.limit]:
        table.add_row(str(entry.id), plain(entry.display_title), plain(entry.display_authors),
                      plain(", ".join(entry.languages)))
    console = Console()
    console.print(table)
    if len(found) > args.limit:
        console.print(f"... and {len(found) - args.limit} more (--limit)", highlight=False)
    spec = PREFIX + ",".join(f"{name}={value}" for name, value in conditions.items())
    # The mirror the search used, so that the command runs as printed where only it is reachable.
    mirror = f" --gutenberg-mirror {shlex.quote(args.gutenberg_mirror)}" if args.gutenberg_mirror else ""
    console.print(plain(f'train on them: python -m textgen_core.train --corpus "{shown(spec, 200)}"'
                        f"{mirror} (the first {DEFAULT_MAX_BOOKS} unless --max-books N)"),
                  highlight=False, soft_wrap=True)
    return 0


def _check(args: argparse.Namespace) -> int:
    entries = load_catalogue(args.gutenberg_mirror, refresh=args.refresh)
    mismatches = dict((book.id, why) for book, why in collection_mismatches(args.collection, entries))
    table = Table(title=f"collection {args.collection} against the Project Gutenberg catalogue",
                  title_justify="left")
    for column in ("id", "title", "author", "catalogue"):
        table.add_column(column, overflow="fold")
    for book in COLLECTIONS[args.collection]:
        table.add_row(str(book.id), plain(book.title), plain(book.author),
                      plain(mismatches.get(book.id, "matches")),
                      style="red" if book.id in mismatches else None)
    Console().print(table)
    if mismatches:
        raise mismatch_error(args.collection, collection_mismatches(args.collection, entries))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = _search if args.command == "search" else _check
    return exit_code(Console(stderr=True), lambda: command(args))


if __name__ == "__main__":
    sys.exit(main())
