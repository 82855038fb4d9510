"""Fuzz the text OT type (collab/ot.py): convergence and friends on valid ops, typed refusals on
garbage.

The bytes decode (atheris.FuzzedDataProvider) to a document and ops on it. Mostly the ops are
valid, and the properties of tests/unit/collab/test_ot.py must hold: TP1 with either side,
compose = sequential apply, normalize idempotent and faithful, invert undoes, lengths add up,
cursors stay in the document. Otherwise one argument is garbage (not a list, a component of the
wrong type, 0 or "", an op longer than the document, a bad side or cursor), and every function
may fail only with ``AppError`` INVALID and a message.

    python -m tests.fuzz.harness_ot .fuzz/ot -max_total_time=60
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import atheris

from tests.fuzz.common import expect, fuzz, instrumented

with instrumented(__name__ == "__main__"):
    from collab import ot
    from config.errors import AppError, ErrorCode

# Few characters, so that inserts and document text collide; two emoji outside the BMP (one
# code point here, two UTF-16 units in a browser).
ALPHABET = "ab \n\u00e9\u4e2d\U0001f600\U0001f44d"
INSERTS = ["a", "b", "\u00e9", "\U0001f600", "\n", "ab", "\U0001f600\U0001f44d", "a\u4e2d\u00e9 "]
MAX_DOC = 24
MAX_STEPS = 8
JUNK: list[Any] = [0, "", True, False, None, 1.5, float("nan"), [], {}, [1], 2**70, -(2**70)]
JUNK_SIDES: list[Any] = ["LEFT", "", None, 0, True, ["left"]]


def text(fdp: atheris.FuzzedDataProvider, limit: int) -> str:
    size = fdp.ConsumeIntInRange(0, limit)
    return "".join(ALPHABET[fdp.ConsumeIntInRange(0, len(ALPHABET) - 1)] for _ in range(size))


def insert(fdp: atheris.FuzzedDataProvider) -> str:
    if fdp.ConsumeBool():
        return fdp.PickValueInList(INSERTS)
    # No NUL: validate refuses it (PostgreSQL cannot store it), rightly, in an op otherwise fine.
    return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(1, 4)).replace("\x00", "") or "x"


def op_on(fdp: atheris.FuzzedDataProvider, length: int) -> list[Any]:
    """An op walking at most ``length`` characters; not normalized, as clients may send."""
    op: list[Any] = []
    left = length
    for _ in range(fdp.ConsumeIntInRange(0, MAX_STEPS)):
        step = fdp.ConsumeIntInRange(0, 2)
        if step == 2 or not left:
            op.append(insert(fdp))
        else:
            size = fdp.ConsumeIntInRange(1, left)
            op.append(size if step == 0 else -size)
            left -= size
    return op


def garbage(fdp: atheris.FuzzedDataProvider, length: int) -> Any:
    """Something that is not an op on a document this long, or only just one."""
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        return fdp.PickValueInList(JUNK)
    op = op_on(fdp, length)
    if kind == 1 or not op:
        op.insert(fdp.ConsumeIntInRange(0, len(op)), fdp.PickValueInList(JUNK))
    elif kind == 2:
        op.append(length + fdp.ConsumeIntInRange(1, 3))  # walks past the end
    else:
        op[fdp.ConsumeIntInRange(0, len(op) - 1)] = fdp.ConsumeInt(9)
    return op


# --- valid ops: the properties ---------------------------------------------------------------


def check_properties(doc: str, a: list[Any], b: list[Any], c: list[Any], cursor: int) -> None:
    """``a`` and ``b`` concurrent on ``doc``; ``c`` made after ``a``; ``cursor`` in ``doc``."""
    after_a, after_b = ot.apply(doc, a), ot.apply(doc, b)
    for first, second, first_after, second_after in (
        (a, b, after_a, after_b),
        (b, a, after_b, after_a),
    ):
        via_first = ot.apply(first_after, ot.transform(second, first, "right"))
        via_second = ot.apply(second_after, ot.transform(first, second, "left"))
        expect(via_first == via_second, "TP1", doc, first, second, via_first, via_second)
    expect(ot.apply(doc, ot.compose(a, c)) == ot.apply(after_a, c), "compose", doc, a, c)
    normal = ot.normalize(a)
    expect(ot.normalize(normal) == normal, "normalize is not idempotent", a, normal)
    expect(ot.apply(doc, normal) == after_a, "normalize changed the op", doc, a, normal)
    expect(ot.apply(after_a, ot.invert(a, doc)) == doc, "invert", doc, a)
    expect(len(after_a) == len(doc) + ot.length_change(a), "length_change", doc, a)
    expect(ot.base_length(a) <= len(doc), "base_length", doc, a)
    ot.validate(a, len(doc))
    for own in (False, True):
        moved = ot.transform_cursor(cursor, a, own)
        expect(0 <= moved <= len(after_a), "cursor out of the document", doc, a, cursor, moved)


# --- garbage: typed refusals only ------------------------------------------------------------


def refused_or_answered(call: Callable[..., Any], *args: Any) -> None:
    try:
        call(*args)
    except AppError as error:
        expect(error.code is ErrorCode.INVALID, "a refusal with another code", call, args)
        expect(bool(error.message), "a refusal without a message", call, args)


def check_garbage(doc: Any, junk: Any, op: list[Any], side: Any, cursor: Any) -> None:
    refused_or_answered(ot.validate, junk)
    refused_or_answered(ot.validate, junk, len(doc) if isinstance(doc, str) else 0)
    refused_or_answered(ot.apply, doc, junk)
    refused_or_answered(ot.apply, doc, op)
    refused_or_answered(ot.normalize, junk)
    refused_or_answered(ot.base_length, junk)
    refused_or_answered(ot.length_change, junk)
    refused_or_answered(ot.compose, junk, op)
    refused_or_answered(ot.compose, op, junk)
    refused_or_answered(ot.transform, junk, op, side)
    refused_or_answered(ot.transform, op, junk, side)
    refused_or_answered(ot.transform_cursor, cursor, junk)
    refused_or_answered(ot.transform_cursor, cursor, op)
    refused_or_answered(ot.invert, junk, doc)
    refused_or_answered(ot.invert, op, doc)


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    valid = fdp.ConsumeIntInRange(0, 3) > 0
    doc = text(fdp, MAX_DOC)
    if valid:
        a, b = op_on(fdp, len(doc)), op_on(fdp, len(doc))
        c = op_on(fdp, len(doc) + ot.length_change(a))
        check_properties(doc, a, b, c, fdp.ConsumeIntInRange(0, len(doc)))
        return
    junk = garbage(fdp, len(doc))
    side = fdp.PickValueInList(["left", "right", *JUNK_SIDES])
    cursor = fdp.PickValueInList([0, len(doc), -1, True, None, 1.5])
    the_doc = doc if fdp.ConsumeIntInRange(0, 7) else fdp.PickValueInList(JUNK)
    check_garbage(the_doc, junk, op_on(fdp, len(doc)), side, cursor)


if __name__ == "__main__":
    fuzz(TestOneInput)
