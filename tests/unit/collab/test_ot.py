"""The text OT type (collab/ot.py): apply, compose, transform, cursors, invert, validation."""

from __future__ import annotations

import doctest
from itertools import pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collab import ot
from collab.ot import (
    MAX_COMPONENTS,
    MAX_INSERT,
    apply,
    base_length,
    compose,
    invert,
    length_change,
    normalize,
    transform,
    transform_cursor,
    validate,
)
from config.errors import AppError, ErrorCode

# The core properties (TP1, compose, invert) run 10,000 examples each: OT bugs hide in rare
# alignments of two ops (a tie behind a delete, an insert at the end of a deleted run). The rest
# run fewer, so that the file stays under a minute on a small machine. No deadline: one slow
# example in 10,000 (a garbage collection) is not a failure.
CORE = settings(max_examples=10_000, deadline=None)
SOME = settings(max_examples=1_000, deadline=None)
FEW = settings(max_examples=500, deadline=None)  # junk: costly to generate, quick to refuse

# --- strategies ------------------------------------------------------------------------------

# Documents and ops are decoded from bytes, one byte per character or component. Hypothesis
# draws and shrinks a byte string in one go, where a list of text and integers costs it a draw
# per element: that is what lets the core properties run 10,000 examples in seconds. Shrinking
# still works (shorter strings, smaller bytes; byte 0 decodes to the simplest step).
#
# ASCII, an accented letter, CJK, and two emoji outside the BMP (one code point here, two UTF-16
# units in the browser). Few, so inserts and document text collide; "|" is kept for a marker.
ALPHABET = "ab \n\u00e9\u4e2d\U0001f600\U0001f44d"
INSERTS = ["a", "b", "\u00e9", "\U0001f600", "\n", "ab", "\U0001f600\U0001f44d", "a\u4e2d\u00e9 "]
STEP_KINDS = 10 + len(INSERTS)  # retain 1..5, delete 1..5, then one per insert
doc_bytes = st.binary(max_size=12)
op_bytes = st.binary(max_size=7)


def decode_doc(raw):
    return "".join(ALPHABET[byte % len(ALPHABET)] for byte in raw)


def decode_op(raw, length):
    """An op from ``raw`` that never walks past ``length`` characters.

    Not normalized on purpose (neighbours of one kind, trailing retains), as clients may send.
    """
    op, left = [], length
    for byte in raw:
        step = byte % STEP_KINDS
        if step >= 10:
            op.append(INSERTS[step - 10])
        elif left:
            size = min(step % 5 + 1, left)
            op.append(size if step < 5 else -size)
            left -= size
    return op


def length_after(length, op):
    """The document length after ``op``, computed without the module under test."""
    return length + sum(len(c) if isinstance(c, str) else min(c, 0) for c in op)


def ops_on(length):
    return op_bytes.map(lambda raw: decode_op(raw, length))


docs = doc_bytes.map(decode_doc)


def _doc_and_op(raw_doc, raw_op):
    doc = decode_doc(raw_doc)
    return doc, decode_op(raw_op, len(doc))


def _concurrent(raw_doc, raw_a, raw_b):
    doc = decode_doc(raw_doc)
    return doc, decode_op(raw_a, len(doc)), decode_op(raw_b, len(doc))


def _sequential(raw_doc, raw_a, raw_b):
    doc = decode_doc(raw_doc)
    a = decode_op(raw_a, len(doc))
    return doc, a, decode_op(raw_b, length_after(len(doc), a))


# (doc, op); (doc, a, b) made on one document at once, by two clients; (doc, a, b) with ``b``
# made on the document ``a`` produced.
doc_and_op = st.builds(_doc_and_op, doc_bytes, op_bytes)
doc_and_concurrent_ops = st.builds(_concurrent, doc_bytes, op_bytes, op_bytes)
doc_and_sequential_ops = st.builds(_sequential, doc_bytes, op_bytes, op_bytes)


def _cursors(raw_doc, raw_op, raw_cursors):
    doc, op = _doc_and_op(raw_doc, raw_op)
    return doc, op, sorted(byte % (len(doc) + 1) for byte in raw_cursors)


# (doc, op, cursors): sorted positions from 0 to len(doc), both ends included.
doc_op_and_cursors = st.builds(_cursors, doc_bytes, op_bytes, st.binary(min_size=1, max_size=4))

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4) | st.just(0)
)
junk = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=5,
)
# Integers and strings around the edges (0, ""), shaped like ops but often not valid ones.
rough_ops = st.lists(st.integers(-6, 6) | st.sampled_from(["", "a", "\U0001f600b"]), max_size=8)
# Mostly proper components with the odd wrong one, so checks deep into the list are reached.
near_ops = st.lists(st.integers(-6, 6) | st.text(max_size=3) | junk, max_size=6)
anything = junk | near_ops


def raises_only_invalid(call, *args):
    """Call; an AppError INVALID with a message is the only failure allowed."""
    try:
        return call(*args)
    except AppError as error:
        assert error.code is ErrorCode.INVALID
        assert error.message
        return None


def message_of(call, *args):
    with pytest.raises(AppError) as caught:
        call(*args)
    assert caught.value.code is ErrorCode.INVALID
    return caught.value.message


# --- the module docstring --------------------------------------------------------------------


def test_the_docstring_examples_hold():
    assert doctest.testmod(ot).failed == 0


# --- apply -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "op", "expected"),
    [
        ("hello", [1, "a", -2, 2], "halo"),
        ("hello", [1, "a", -2], "halo"),  # the rest is retained
        ("hello", [], "hello"),
        ("", ["hi"], "hi"),
        ("hello", [-5], ""),
        ("hello", [5, "!"], "hello!"),
        ("hello", ["> "], "> hello"),
        ("hello", [2, 1, "L", -1, "L"], "helLLo"),  # not normalized: fine
        ("a\U0001f44bb", [1, -1, "\U0001f600"], "a\U0001f600b"),  # one code point each
        ("\U0001f44b\U0001f44b", [1, "\u00e9"], "\U0001f44b\u00e9\U0001f44b"),
    ],
)
def test_apply_examples(doc, op, expected):
    assert apply(doc, op) == expected


@pytest.mark.parametrize(
    ("doc", "op"), [("abc", [4]), ("abc", [-4]), ("abc", [2, "x", -2]), ("", [1])]
)
def test_apply_refuses_an_op_longer_than_the_document(doc, op):
    assert "longer than the document" in message_of(apply, doc, op)


@given(doc_and_op)
@settings(deadline=None)
def test_apply_changes_the_length_by_length_change(case):
    doc, op = case

    assert len(apply(doc, op)) == len(doc) + length_change(op)
    assert base_length(op) <= len(doc)


def test_base_length_and_length_change_examples():
    op = [3, "hi", -2, 5]

    assert base_length(op) == 10
    assert length_change(op) == 0
    assert (base_length([]), length_change([])) == (0, 0)
    assert (base_length(["\U0001f600"]), length_change(["\U0001f600"])) == (0, 1)
    assert (base_length([-4, 1]), length_change([-4, 1])) == (5, -4)


# --- normalize -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ([], []),
        ([1, 1], []),
        (["a", 100], ["a"]),
        (["a", "b"], ["ab"]),
        (["a", 1, "b"], ["a", 1, "b"]),
        ([1, 2, "a", "b", -1, -2, 3], [3, "ab", -3]),
        ([-1, "a", -1], [-1, "a", -1]),  # insert and delete are never reordered
        (["\U0001f600", "\U0001f44d"], ["\U0001f600\U0001f44d"]),
    ],
)
def test_normalize_examples(op, expected):
    assert normalize(op) == expected


@given(doc_and_op)
@SOME
def test_normalize_is_idempotent_and_keeps_what_the_op_does(case):
    doc, op = case

    once = normalize(op)

    assert normalize(once) == once
    assert apply(doc, once) == apply(doc, op)
    assert all(type(x) is not type(y) or (x > 0) != (y > 0) for x, y in pairwise(once))
    assert not once or not (isinstance(once[-1], int) and once[-1] > 0)


def test_normalize_does_not_change_its_argument():
    op = [1, 1, "a", "b"]

    normalize(op)

    assert op == [1, 1, "a", "b"]


# --- compose ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1, "x"], [-1, 2, "y"], [-1, "x", 1, "y"]),
        (["abc"], [1, -1], ["ac"]),  # deleting what ``a`` inserted: never there
        ([-2], ["x"], ["x", -2]),
        ([2, -2], [2, -1], [2, -3]),  # ``b`` deletes past what ``a`` deleted
        ([], [3, "z"], [3, "z"]),
        ([3, "z"], [], [3, "z"]),
    ],
)
def test_compose_examples(a, b, expected):
    assert compose(a, b) == expected


@given(doc_and_sequential_ops)
@CORE
# Shrunk from a mutation check (compose letting ``b``'s retain use up ``a``'s delete).
@example(case=("aab", [-1], [1, -1]))
def test_compose_is_applying_one_op_then_the_other(case):
    doc, a, b = case

    composed = compose(a, b)

    assert apply(doc, composed) == apply(apply(doc, a), b)
    assert normalize(composed) == composed
    validate(composed, len(doc))


@given(doc_and_sequential_ops, st.data())
@SOME
def test_compose_is_associative(case, data):
    doc, a, b = case
    c = data.draw(ops_on(length_after(length_after(len(doc), a), b)))

    assert apply(doc, compose(compose(a, b), c)) == apply(doc, compose(a, compose(b, c)))


# --- transform -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "other", "side", "expected"),
    [
        # The tie: two inserts at one position. "left" goes first.
        (["a"], ["b"], "left", ["a"]),
        (["a"], ["b"], "right", [1, "a"]),
        ([2, "a"], [2, "bb"], "left", [2, "a"]),
        ([2, "a"], [2, "bb"], "right", [4, "a"]),
        # No tie: the earlier position goes first whatever the side.
        ([1, "a"], ["b"], "left", [2, "a"]),
        (["a"], [1, "b"], "right", ["a"]),
        # Deletes.
        ([3, "x"], [-2], "left", [1, "x"]),
        ([-3], [1, -1], "left", [-2]),  # the middle one is gone already
        ([1, -2], [1, -2], "left", []),
        ([1, "x", -2], [-3], "left", ["x"]),  # an insert inside deleted text survives
        ([2, -2], ["\U0001f600\U0001f600"], "left", [4, -2]),
    ],
)
def test_transform_examples(op, other, side, expected):
    assert transform(op, other, side) == expected


def test_transform_follows_sharedb_submitted_op_goes_left():
    # Both clients insert at 0 of "". Ada's op is committed first; Bob's arrives after it.
    doc, ada, bob = "", ["ada"], ["bob"]
    committed = apply(doc, ada)

    # Server: transform(submitted, committed, "left").
    server = apply(committed, transform(bob, ada, "left"))
    # Bob (Bob's op in flight): transform(remote, inflight, "right").
    at_bob = apply(apply(doc, bob), transform(ada, bob, "right"))
    # Ada (her op acknowledged): Bob's op as the server broadcast it.
    at_ada = apply(committed, transform(bob, ada, "left"))

    assert server == at_bob == at_ada == "bobada"


@pytest.mark.parametrize(
    "case",
    [
        # Found by reasoning before the first run: a left op with two neighbouring inserts
        # (not normalized) must put both first at a tie, not only the first one. TP1 shrinks
        # to ("", ["a", "b"], ["a"]) when transform is made to skip normalizing.
        ("", ["a", "b"], ["x"]),
        ("x", ["a", -1, "b"], ["y"]),
        ("x", [-1, "a"], ["b"]),
    ],
)
def test_transform_converges_regressions(case):
    check_convergence(*case)


def check_convergence(doc, a, b):
    b_after_a = transform(b, a, "right")
    a_after_b = transform(a, b, "left")

    assert apply(apply(doc, a), b_after_a) == apply(apply(doc, b), a_after_b)
    for result, done in ((b_after_a, a), (a_after_b, b)):
        assert normalize(result) == result
        validate(result, length_after(len(doc), done))


@given(doc_and_concurrent_ops)
@CORE
# Shrunk from a mutation check (transform dropping inserts that sit in text the other op
# deleted); no failure of the real code was found while developing.
@example(case=("a", ["a"], [-1]))
def test_transform_converges_tp1(case):
    check_convergence(*case)


@given(doc_and_op)
@SOME
def test_transform_by_nothing_or_of_nothing_is_nothing_new(case):
    _, a = case

    assert transform(a, [], "left") == transform(a, [], "right") == normalize(a)
    assert transform([], a, "left") == transform([], a, "right") == []


@given(doc_and_concurrent_ops)
@SOME
def test_transform_sides_differ_only_at_ties(case):
    doc, a, b = case

    left = apply(apply(doc, b), transform(a, b, "left"))
    right = apply(apply(doc, b), transform(a, b, "right"))

    assert len(left) == len(right)
    assert sorted(left) == sorted(right)


def test_transform_refuses_an_unknown_side():
    assert "side" in message_of(transform, ["a"], ["b"], "middle")
    assert "side" in message_of(transform, ["a"], ["b"], ["left"])


# --- transform_cursor ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cursor", "op", "own", "expected"),
    [
        # ottypes/text's cases, in this format: [10, "oh hi", 10, -20] on a long document.
        (10, [10, "oh hi", 10, -20], False, 10),  # before someone else's insert at the cursor
        (10, [10, "oh hi"], True, 15),  # after one's own
        (25, [25, -20], False, 25),
        (35, [25, -20], False, 25),  # inside deleted text: to where it was
        (45, [25, -20], False, 25),
        (35, [25, -20], True, 25),
        (55, [25, -20], False, 35),
        (0, [10, "oh hi", 10, -20], False, 0),
        (100, [10, "oh hi", 10, -20], False, 85),
        (11, [10, "oh hi", 10, -20], False, 16),
        (20, [10, "oh hi", 10, -20], False, 25),
        (30, [10, "oh hi", 10, -20], False, 25),
        (41, [10, "oh hi", 10, -20], False, 26),
        # Where ottypes/text would move one's own cursor to the end of the op, this keeps it.
        (0, [10, "oh hi"], True, 0),
        (100, [10, "oh hi"], True, 105),
        (3, [], False, 3),
        (1, ["\U0001f600"], False, 2),
    ],
)
def test_transform_cursor_examples(cursor, op, own, expected):
    assert transform_cursor(cursor, op, is_own_op=own) == expected


@given(doc_op_and_cursors, st.booleans())
@SOME
def test_transform_cursor_stays_in_the_document_and_keeps_cursors_in_order(case, own):
    doc, op, cursors = case
    result = apply(doc, op)

    moved = [transform_cursor(cursor, op, is_own_op=own) for cursor in cursors]

    assert all(0 <= position <= len(result) for position in moved)
    assert moved == sorted(moved)


@given(doc_op_and_cursors, st.booleans())
@SOME
def test_transform_cursor_goes_where_an_insert_at_it_would(case, own):
    # A cursor moves as a one-character insert at it would: before others' inserts at the same
    # place (the marker on the left), after one's own (the marker on the right).
    doc, op, (cursor, *_) = case
    marker = [cursor, "|"] if cursor else ["|"]

    marked = apply(apply(doc, op), transform(marker, op, "right" if own else "left"))

    assert transform_cursor(cursor, op, is_own_op=own) == marked.index("|")


@pytest.mark.parametrize("cursor", [-1, 1.0, "3", True, None, [1]])
def test_transform_cursor_refuses_what_is_not_a_position(cursor):
    assert "cursor" in message_of(transform_cursor, cursor, [1, "a"])


# --- invert ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "doc", "expected"),
    [
        ([1, "a", -2, 2], "hello", [1, -1, "el"]),
        (["a", -1], "x", [-1, "x"]),
        ([], "x", []),
        ([2, -1, "\U0001f600"], "ab\U0001f44dc", [2, "\U0001f44d", -1]),
    ],
)
def test_invert_examples(op, doc, expected):
    assert invert(op, doc) == expected


@given(doc_and_op)
@CORE
def test_invert_undoes_the_op(case):
    doc, op = case
    done = apply(doc, op)

    inverse = invert(op, doc)

    assert apply(done, inverse) == doc
    assert normalize(inverse) == inverse
    assert invert(inverse, done) == normalize(op)


def test_invert_refuses_a_document_the_op_does_not_fit():
    assert "longer than the document" in message_of(invert, [-3], "ab")


# --- validate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [[], [5], ["a"], [-1], [1, 1, "a", "b", -1, -1, 3], ["\U0001f600"], [10**30]],
)
def test_validate_accepts_ops(op):
    validate(op)


@pytest.mark.parametrize(
    ("op", "doc_length", "words"),
    [
        (None, None, "must be a list"),
        ({"d": 1}, None, "must be a list"),
        ((1, "a"), None, "must be a list"),
        ("abc", None, "must be a list"),
        ([1, True], None, "Component 1 of the op must be an integer or a string"),
        ([False], None, "Component 0 of the op must be an integer or a string"),
        ([1.0], None, "must be an integer or a string"),
        ([{"d": 2}], None, "must be an integer or a string"),
        ([["a"]], None, "must be an integer or a string"),
        ([None], None, "must be an integer or a string"),
        (["a", 0], None, "Component 1 of the op is 0"),
        ([2, ""], None, "Component 1 of the op is an empty insert"),
        ([4], 3, "longer than the document (3 characters)"),
        ([2, "abc", -2], 3, "longer than the document"),
        ([1], 0, "longer than the document"),
        (["a\x00b"], None, "NUL"),
        (["\ud83d"], None, "unpaired surrogate"),
        (["\ude00x"], None, "unpaired surrogate"),
    ],
)
def test_validate_refuses_with_a_clear_message(op, doc_length, words):
    assert words in message_of(validate, op, doc_length)


def test_validate_lets_an_op_stop_short_of_the_end_of_the_document():
    validate([1, "x"], 5)
    validate([2, -3], 5)
    validate([5], 5)


def test_validate_caps_the_number_of_components():
    validate([1, "a"] * (MAX_COMPONENTS // 2))

    assert "at most" in message_of(validate, [1, "a"] * (MAX_COMPONENTS // 2) + [1])


def test_validate_caps_what_one_op_inserts():
    validate(["a" * (MAX_INSERT - 1), 1, "\U0001f600"])

    assert "insert at most" in message_of(validate, ["a" * MAX_INSERT, 1, "\U0001f600"])


def test_ops_the_server_derives_are_not_held_to_the_caps():
    big = ["a" * MAX_INSERT]

    assert compose(big, [MAX_INSERT, "b"]) == ["a" * MAX_INSERT + "b"]
    assert normalize(["a"] * (MAX_COMPONENTS + 1)) == ["a" * (MAX_COMPONENTS + 1)]


@given(doc_and_op)
@SOME
def test_validate_accepts_every_op_that_fits_the_document(case):
    doc, op = case

    validate(op, len(doc))


@given(
    anything,
    anything,
    docs | junk,
    junk | st.integers(-2, 20),
    st.sampled_from(["left", "right", "up"]),
)
@FEW
def test_every_function_raises_nothing_but_invalid_on_any_json(op, other, doc, cursor, side):
    for call, args in [
        (validate, (op,)),
        (validate, (op, cursor if isinstance(cursor, int) else None)),
        (apply, (doc, op)),
        (normalize, (op,)),
        (compose, (op, other)),
        (transform, (op, other, side)),
        (transform_cursor, (cursor, op)),
        (invert, (op, doc)),
        (base_length, (op,)),
        (length_change, (op,)),
    ]:
        raises_only_invalid(call, *args)


@given(docs, rough_ops)
@SOME
def test_an_op_that_validates_applies(doc, op):
    try:
        validate(op, len(doc))
    except AppError:
        return

    assert len(apply(doc, op)) == len(doc) + length_change(op)
