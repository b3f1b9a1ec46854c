"""Delimiters of an interchange: the fixed-width ISA header, and delimiters that collide.

X12 requires the element separator, the repetition separator (ISA11, from 00501 on), the component
separator (ISA16) and the segment terminator to be four different characters that never occur in
data.  When two of them are the same character, splitting on one also splits on the other, and
values come out shifted (a billed 120.00 read from the element that holds the procedure code).
:func:`collision` names such a clash; the reader turns it into a ``DELIMITER_COLLISION`` finding.
"""

from __future__ import annotations

import re

#: offsets of the 16 element separators in a fixed-width (106-byte) ISA header; ISA16 is at 104
#: and the segment terminator at 105
ISA_SEPARATORS = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)
ISA_LENGTH = 106
#: the start of a new ISA header, for skipping an interchange whose segments cannot be found:
#: ISA (not the end of a longer word), a punctuation element separator, the two digits of ISA01,
#: the element separator again
NEXT_ISA = re.compile(r"(?<![A-Za-z0-9])ISA([^A-Za-z0-9 \t\r\n])[0-9]{2}\1")


def fixed_isa(header: str) -> list[str] | None:
    """The 17 elements (``ISA`` to ISA16) of a fixed-width ISA header, cut at the fixed offsets.

    ``header`` starts with ``ISA``.  None when the header is shorter than 106 bytes or does not
    have its element separator at every one of the 16 fixed offsets (a variable-width header).
    Cutting at the offsets reads ISA11 and ISA16 right even when one of them is the element
    separator, which counting separators cannot.
    """
    if len(header) < ISA_LENGTH:
        return None
    elem = header[3]
    if any(header[i] != elem for i in ISA_SEPARATORS):
        return None
    ends = (*ISA_SEPARATORS, ISA_LENGTH - 1)
    return [header[:3]] + [header[ends[k] + 1 : ends[k + 1]] for k in range(16)]


def collision(element: str, repetition: str, component: str, terminator: str) -> str:
    """What collides among an interchange's delimiters, as a message; "" when nothing does.

    ``repetition`` is "" when the interchange has none (before 00501, or an ISA11 code letter).
    A component separator that is a letter, a digit or a space collides with the data itself.
    """
    named = [("the element separator", element), ("the segment terminator", terminator)]
    if repetition:
        named.append(("the repetition separator (ISA11)", repetition))
    named.append(("the component separator (ISA16)", component))
    clashes = [
        f"{named[j][0]} is {named[j][1]!r}, the same character as {named[i][0]}" for j in range(len(named)) for i in range(j) if named[i][1] == named[j][1]
    ]
    if component.isalnum() or component == " ":
        clashes.append(f"the component separator (ISA16) is {component!r}, a character that occurs in data")
    return "; ".join(clashes)
