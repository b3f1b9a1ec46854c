"""Where a parsed object came from.

Every segment, claim, payment, adjustment and finding can name its origin: the file, the
1-based segment number within the file, the byte offset of the segment's first byte, the
interchange (ISA13), functional group (GS06) and transaction set (ST02) control numbers,
and the implementation-guide loop id.
"""

from __future__ import annotations

from typing import NamedTuple


class Source(NamedTuple):
    """A small, immutable reference to a place in an X12 file."""

    file: str
    segment: int
    offset: int
    isa13: str = ""
    gs06: str = ""
    st02: str = ""
    loop: str = ""

    def as_dict(self) -> dict[str, object]:
        """The JSON form used by ``edirecon parse`` and the engine's evidence."""
        return {
            "file": self.file,
            "segment": self.segment,
            "offset": self.offset,
            "isa13": self.isa13,
            "gs06": self.gs06,
            "st02": self.st02,
            "loop": self.loop,
        }


class Envelope(NamedTuple):
    """The envelope ids shared by every segment of one transaction set."""

    file: str
    isa13: str
    gs06: str
    st02: str

    def at(self, segment: int, offset: int, loop: str = "") -> Source:
        """The :class:`Source` of one segment of this transaction set."""
        return Source(self.file, segment, offset, self.isa13, self.gs06, self.st02, loop)
