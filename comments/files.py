"""What an uploaded file really is, from its first bytes. Pure but for the ``filetype`` library.

    sniff_content_type(b"\\x89PNG\\r\\n\\x1a\\n...")   # "image/png"
    sniff_content_type(b"a,b\\n1,2\\n", name="x.csv")  # "text/csv"
    sniff_content_type(b"MZ\\x90\\x00...")               # None: no type we know, refuse it

Binary formats are recognised by their magic numbers. Text has none: a head that decodes as
UTF-8 without control characters is text, ``text/csv`` when the file is named ``.csv``. Text is
decided first: some signatures are printable ("BM" for bitmaps, "ID3", "MThd"), and a note that
opens with "BMW" is not an image.
"""

from __future__ import annotations

import filetype

HEAD_BYTES = 8192  # what callers read: enough for every signature ``filetype`` knows
_TEXT_CONTROLS = set(range(32)) - {9, 10, 12, 13}  # tab, newlines and form feed are text


def sniff_content_type(head: bytes, *, name: str = "") -> str | None:
    if _is_text(head):
        return "text/csv" if name.lower().endswith(".csv") else "text/plain"
    kind = filetype.guess(head)
    return None if kind is None else kind.mime


def _is_text(head: bytes) -> bool:
    if not head or any(byte in _TEXT_CONTROLS for byte in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # The head may end inside a character: only an error in its last 3 bytes is forgiven.
        return error.start >= len(head) - 3 and error.reason == "unexpected end of data"
    return True
