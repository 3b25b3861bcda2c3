"""Cut a Project Gutenberg plain-text book down to the book itself.

Every file the Gutenberg site generates (`cache/epub/{id}/pg{id}.txt`) wraps the text in a header
(title, author, release date, a licence reminder) ending with a line
`*** START OF THE PROJECT GUTENBERG EBOOK ... ***`, and a footer starting with
`*** END OF THE PROJECT GUTENBERG EBOOK ... ***` followed by the full licence. Older files say
"THIS PROJECT" instead of "THE PROJECT", and some end with "End of the Project Gutenberg EBook of"
before the marker. The rules (after the poet seed's cleaner, tightened):

- line endings become "\\n", a byte-order mark is dropped;
- the text starts after the last START marker line (a few books repeat it);
- credit paragraphs right after it ("Produced by ...", "Transcriber's Note ...") within the first
  2,000 characters are dropped: they are about the file, not the book;
- the text ends before the first END marker or "End of (the) Project Gutenberg" line;
- leading and trailing blank lines go; the result ends with one newline.

A file with no START marker, or with a START but no END marker (a truncated download, or a file
laid out unlike Gutenberg's), is refused rather than trained on with its licence inside.
"""

from __future__ import annotations

import re

from textgen_core.errors import CorpusError

_START = re.compile(r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$",
                    re.IGNORECASE | re.MULTILINE)
_END = re.compile(
    r"^(?:\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK"
    r"|End of (?:the )?Project Gutenberg(?:'s)?\b).*$",
    re.IGNORECASE | re.MULTILINE,
)
_CREDIT = re.compile(
    r"\s*(?:\[\s*)?(?:Produced by|E-?text prepared by|Transcribed by|Transcriber'?s Notes?\b)",
    re.IGNORECASE,
)
CREDIT_WINDOW = 2000
_TITLE = re.compile(r"^Title:\s*(.+)$", re.MULTILINE)
_AUTHOR = re.compile(r"^Author:\s*(.+)$", re.MULTILINE)


def normalise_newlines(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def strip_gutenberg(text: str, book: str = "the book") -> str:
    """The book's own text from a raw Gutenberg file; `book` names it in errors."""
    text = normalise_newlines(text)
    starts = list(_START.finditer(text))
    if not starts:
        raise CorpusError(
            f"{book} has no '*** START OF THE PROJECT GUTENBERG EBOOK' line; "
            "is the mirror serving Project Gutenberg plain-text files?"
        )
    body = text[starts[-1].end():]
    end = _END.search(body)
    if end is None:
        raise CorpusError(
            f"{book} has a '*** START OF THE PROJECT GUTENBERG EBOOK' line but no '*** END OF THE "
            "PROJECT GUTENBERG EBOOK' line after it, so its licence cannot be cut off; refused "
            "(a truncated download, or not a Project Gutenberg plain-text file)"
        )
    body = body[: end.start()]
    body = _drop_credits(body.lstrip("\n"))
    body = body.strip("\n")
    if not body.strip():
        raise CorpusError(f"{book} is empty once the Project Gutenberg header and footer are removed")
    return body + "\n"


def _drop_credits(body: str) -> str:
    """Drop whole credit paragraphs at the top (paragraphs are separated by blank lines)."""
    start = 0
    while True:
        while body.startswith("\n", start):
            start += 1
        end = body.find("\n\n", start)
        if not _CREDIT.match(body, start) or end < 0 or end > CREDIT_WINDOW:
            return body[start:]
        start = end


def header_field(raw: str, name: str) -> str | None:
    """`Title` or `Author` from the raw header (for labelling sources), if present."""
    pattern = _TITLE if name == "title" else _AUTHOR
    header = normalise_newlines(raw[:20_000])
    start = _START.search(header)
    match = pattern.search(header[: start.start()] if start else header)
    return match.group(1).strip() if match else None
