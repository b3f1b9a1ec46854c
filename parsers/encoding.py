"""The character encoding of an interchange's text: UTF-8 when its bytes are valid UTF-8, else Windows-1252.

The reader keeps raw text one character per byte (latin-1), so string offsets are byte offsets.
Pure-ASCII text needs no decision and no decoding (most files).  When the first transaction set
with a byte outside ASCII is met, :func:`detect` reads the interchange from there to its IEA with a
second file handle, a chunk at a time (memory stays bounded), and checks that every byte sequence
is valid UTF-8.  The delimiters are ASCII, so a valid interchange splits into valid elements.
"""

from __future__ import annotations

import re

UTF8 = "utf-8"
CP1252 = "windows-1252"

#: latin-1 character -> Windows-1252 character for 0x80-0x9F; the five bytes Windows-1252 leaves
#: undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) keep their latin-1 character, so no byte is ever lost
_TO_CP1252 = {b: bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(0x80, 0xA0)}
_FROM_CP1252 = {ord(c): chr(b) for b, c in _TO_CP1252.items()}


def decode(raw: str, encoding: str) -> str:
    """The text of ``raw`` (one character per byte) read in ``encoding``."""
    if encoding == UTF8:
        try:
            return raw.encode("latin-1").decode(UTF8)
        except UnicodeDecodeError:  # cannot happen for a checked interchange; never lose a byte
            pass
    return raw.translate(_TO_CP1252)


def raw(text: str, encoding: str) -> str:
    """The inverse of :func:`decode`: the bytes of ``text`` again, one character per byte."""
    if text.isascii():
        return text
    if encoding == UTF8:
        return text.encode(UTF8).decode("latin-1")
    return text.translate(_FROM_CP1252)


def detect(path: str, start: int, element: str, terminator: str, chunk_size: int) -> tuple[str, str]:
    """(encoding, why) of the interchange text from byte ``start`` to its IEA (or the next ISA,
    or end of file), read from ``path`` a chunk at a time."""
    if not (element + terminator).isascii():
        return CP1252, "a delimiter is not ASCII, so the text cannot be UTF-8"
    term, elem = terminator.encode("ascii"), element.encode("ascii")
    end = re.compile(re.escape(term) + rb"[ \t\r\n]*(?:IEA|ISA)" + re.escape(elem))
    carry = b""  # the bytes from the last terminator of the previous window (already checked)
    pending = b""  # an incomplete UTF-8 sequence at the end of the previous chunk
    offset = start  # absolute offset of the next unchecked byte
    with open(path, "rb") as fh:
        fh.seek(start)
        while True:
            chunk = fh.read(chunk_size)
            window = carry + chunk
            m = end.search(window)
            last = m is not None or not chunk
            new = chunk if m is None else chunk[: max(0, m.start() - len(carry))]
            data = pending + new
            if pending or not data.isascii():
                try:
                    data.decode(UTF8)
                    pending = b""
                except UnicodeDecodeError as exc:
                    if exc.reason != "unexpected end of data" or last:
                        at = offset - len(pending) + exc.start
                        return CP1252, f"byte 0x{data[exc.start]:02X} at offset {at} is not valid UTF-8"
                    pending = data[exc.start :]
            offset += len(new)
            if last:
                return UTF8, "every byte outside ASCII is part of a valid UTF-8 sequence"
            k = window.rfind(term)
            carry = window[k:] if k >= 0 else b""
