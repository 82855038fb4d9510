"""What an uploaded file really is (comments/files.py): text by its bytes, binaries by magic."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from comments.files import HEAD_BYTES, sniff_content_type

CONTROLS = [chr(c) for c in range(32) if c not in (9, 10, 12, 13)]
# Any text a person writes: every code point but the control characters (surrogates cannot be
# encoded, and st.text leaves them out).
texts = st.text(
    alphabet=st.characters(blacklist_characters=CONTROLS, blacklist_categories=["Cs"]),
    min_size=1,
)


@given(texts)
@example("BMW cars")  # "BM" is the bitmap signature: a text opening with it is still text
@example("ID3 tags")  # MP3
@example("GIF89a, said the file")
@example("%PDF is a text too")
@example("MThd")  # MIDI
@example("wOFF")  # a font
def test_any_utf8_text_without_control_characters_is_text(text):
    head = text.encode("utf-8")[:HEAD_BYTES]

    assert sniff_content_type(head) == "text/plain"
    assert sniff_content_type(head, name="DATA.CSV") == "text/csv"


@given(st.text(min_size=1).filter(lambda t: not any(c in CONTROLS for c in t)), st.data())
def test_a_head_that_ends_inside_a_character_is_still_text(text, data):
    # The caller reads the first HEAD_BYTES: they may end in the middle of a character.
    wide = data.draw(st.sampled_from(["é", "€", "😀"]))
    encoded = (text + wide).encode("utf-8")
    cut = data.draw(st.integers(1, len(wide.encode("utf-8")) - 1))

    assert sniff_content_type(encoded[:-cut]) == "text/plain"


@pytest.mark.parametrize(
    "head",
    [
        b"hello\x00world",  # NUL
        b"\x1b[31mred",  # an escape sequence
        b"caf\xe9 au lait",  # Latin-1, not UTF-8
        b"\xff\xfe\x00h\x00i",  # UTF-16
        b"\xe2\x82\xac\xe2 and more",  # a broken character that is not at the end
        b"",
    ],
)
def test_heads_that_are_not_utf8_text_and_no_known_binary_are_refused(head):
    assert sniff_content_type(head) is None


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "application/zip"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "application/x-msdownload"),
    ],
)
def test_binary_formats_are_known_by_their_signatures(head, expected):
    assert sniff_content_type(head + bytes(64), name="notes.txt") == expected


def test_the_name_decides_only_between_plain_text_and_csv():
    assert sniff_content_type(b"a,b\n1,2\n", name="table.csv") == "text/csv"
    assert sniff_content_type(b"a,b\n1,2\n", name="table.csv.exe") == "text/plain"
    assert sniff_content_type(b"\x89PNG\r\n\x1a\n" + bytes(32), name="x.csv") == "image/png"
