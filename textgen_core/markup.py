"""`python -m textgen_core.markup --corpus X --text FILE --html out.html`: colour the passages of
a text that occur verbatim in a corpus (any corpus training accepts; Gutenberg books are fetched
if missing). Without `--html` the coloured text is printed to the terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from runtime.atomic_file import atomic_file
from runtime.command_line import Parser
from runtime.errors import MarkupError, TextgenError
from runtime.file_kind import TAKES_TEXT, wrong_kind
from runtime.markup.copy_index import DEFAULT_MIN_RUN, CopyIndex, Markup, validate_min_run
from runtime.markup.render import terminal_legend, to_html, to_terminal
from runtime.markup.sources import index_dir, source_label
from runtime.regular_file import read_regular_text
from runtime.terminal_text import plain, print_error
from textgen_core.data.corpus import resolve_corpus


def corpus_index(spec: str, encoding: str | None = None, mirror: str | None = None) -> CopyIndex:
    """The copy index of a training corpus, built (with a status line) on first use, then cached."""
    corpus = resolve_corpus(spec, encoding, gutenberg_mirror=mirror)
    folder = Path(spec).expanduser()
    root = folder if folder.is_dir() else None
    labels = [source_label(path, root) for path in corpus.files]
    console = Console(stderr=True)
    with console.status(plain(f"indexing {spec} for verbatim-copy markup (once; cached)")) as status:
        def on_round(k: int) -> None:
            status.update(plain(f"indexing {spec} for verbatim-copy markup: sort round {k + 1}"))

        return CopyIndex.for_files(corpus.files, labels, corpus.encoding, cache=index_dir(),
                                   on_round=on_round)


def write_html(path: str | Path, page: str) -> Path:
    """Write atomically: the file is the old page or the whole new one, never a part."""
    path = Path(path)
    try:
        with atomic_file(path) as f:
            f.write(page.encode("utf-8"))
    except OSError as exc:
        raise MarkupError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def add_markup_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-run", type=int, default=DEFAULT_MIN_RUN, metavar="N",
                        help="shortest copied passage to mark, in characters (default %(default)s)")
    parser.add_argument("--gutenberg-mirror", metavar="URL",
                        help="Project Gutenberg mirror for gutenberg:IDS and the named collections")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m textgen_core.markup",
                    description="Mark the passages of a text copied verbatim from a corpus.")
    parser.add_argument("--corpus", default="shakespeare", metavar="SPEC",
                        help="'shakespeare' (default), gutenberg:IDS, women-writers, philosophers, "
                             "a .txt file or a folder of them")
    parser.add_argument("--encoding", metavar="NAME",
                        help="text encoding of the corpus files (default utf-8)")
    parser.add_argument("--text", required=True, metavar="FILE",
                        help="the text to check (a UTF-8 file; - for stdin)")
    parser.add_argument("--html", metavar="OUT.html", help="write a coloured HTML page here")
    add_markup_flags(parser)
    return parser


TEXT_LIMIT = 64 << 20  # bytes of --text (a file or stdin)


def _read_text(name: str) -> str:
    if name == "-":
        text = sys.stdin.read(TEXT_LIMIT + 1)
        if len(text) > TEXT_LIMIT:
            raise MarkupError(f"--text -: more than {TEXT_LIMIT >> 20} MB on stdin; markup checks at most "
                              "that")
        return text
    problem = wrong_kind(name, TAKES_TEXT)
    if problem is not None:
        raise MarkupError(f"--text: {problem}")
    try:
        return read_regular_text(name, TEXT_LIMIT)
    except FileNotFoundError:
        raise MarkupError(f"--text file not found: {name}") from None
    except UnicodeDecodeError:
        raise MarkupError(f"--text {name} is not valid UTF-8 text") from None
    except OSError as exc:
        raise MarkupError(f"cannot read --text {name}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Console(highlight=False)
    try:
        validate_min_run(args.min_run)
        text = _read_text(args.text)
        index = corpus_index(args.corpus, args.encoding, args.gutenberg_mirror)
        markup: Markup = index.mark(text, args.min_run)
        if args.html:
            page = to_html(markup, title=f"Verbatim copies from {args.corpus}", corpus=args.corpus)
            out.print(plain(f"wrote {write_html(args.html, page)}: {markup.summary()}"), soft_wrap=True)
        else:
            out.print(to_terminal(markup), soft_wrap=True)
            out.print(terminal_legend(markup), soft_wrap=True)
    except TextgenError as exc:
        print_error(exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
