"""The text OT type of collaborative documents, as ottypes/text and ot.js define it. Pure.

An op is a JSON list of components that walk the document from its start:

- a positive int ``n`` retains (keeps) the next ``n`` characters;
- a non-empty string inserts itself at the current position;
- a negative int ``-n`` deletes the next ``n`` characters.

    >>> apply("Hello world", [6, -5, "there"])
    'Hello there'
    >>> apply("hello", [1, "a", -2, 2])
    'halo'
    >>> apply("a👋b", [2, -1, "c"])
    'a👋c'

Characters are Unicode code points (Python ``str`` indexing): "👋" is one character here and
two UTF-16 units in JavaScript, so the browser converts. An op need not reach the end of the
document, the rest is retained: ``[2, "x"]`` applies to any document of 2 characters or more.
``normalize`` merges neighbours of one kind and drops a trailing retain:

    >>> normalize([1, 2, "a", "b", -1, 3])
    [3, 'ab', -1]

Two ops ``a`` and ``b`` made concurrently on one document converge (TP1):

    apply(apply(doc, a), transform(b, a, "right")) == apply(apply(doc, b), transform(a, b, "left"))

``side`` breaks the one tie, two inserts at one position: "left" puts the transformed op's
insert first. As in ShareDB, the server computes ``transform(submitted, committed, "left")``, and
a client ``transform(inflight, remote, "left")`` and ``transform(remote, inflight, "right")``.

    >>> transform(["a"], ["b"], "left"), transform(["b"], ["a"], "right")
    (['a'], [1, 'b'])

Every function raises ``AppError(ErrorCode.INVALID)``, with a message safe to show, for input
that is not an op; ``validate`` also holds a submitted op to the caps below.
"""

from __future__ import annotations

import re
from typing import Literal, TypeAlias

from config.errors import AppError, ErrorCode

Component: TypeAlias = int | str
Op: TypeAlias = list[Component]
Side: TypeAlias = Literal["left", "right"]
Kind: TypeAlias = Literal["insert", "delete"]

# What one submitted op may carry, so that a client cannot make the server walk, store and
# broadcast an unbounded op. Ops the server derives itself (transform, compose, invert) are not
# held to them: a legitimate op transformed through others may grow past them.
MAX_COMPONENTS = 10_000
MAX_INSERT = 1_000_000  # code points, all inserts of the op together

# PostgreSQL text holds neither NUL nor a lone surrogate (which has no UTF-8 form); a lone
# surrogate also means the client cut a UTF-16 pair in two when it converted to code points.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _invalid(message: str) -> AppError:
    return AppError(ErrorCode.INVALID, message)


def _check(op: object) -> Op:
    """The op itself if its shape is right (any size), else AppError."""
    if not isinstance(op, list):
        raise _invalid("An op must be a list of components.")
    for index, component in enumerate(op):
        if isinstance(component, str):
            if not component:
                raise _invalid(f"Component {index} of the op is an empty insert.")
        elif isinstance(component, bool) or not isinstance(component, int):
            raise _invalid(f"Component {index} of the op must be an integer or a string.")
        elif component == 0:
            raise _invalid(f"Component {index} of the op is 0; counts start at 1.")
    return op


def _check_fits(op: Op, doc_length: int) -> None:
    if _span(op) > doc_length:
        raise _invalid(f"The op is longer than the document ({doc_length} characters).")


def _span(op: Op) -> int:
    return sum(abs(c) for c in op if isinstance(c, int))


def validate(op: object, doc_length: int | None = None) -> None:
    """Raise AppError unless ``op`` is an op a client may submit (to a document this long)."""
    if not isinstance(op, list):
        raise _invalid("An op must be a list of components.")
    if len(op) > MAX_COMPONENTS:
        raise _invalid(f"An op may have at most {MAX_COMPONENTS} components.")
    _check(op)
    inserts = [c for c in op if isinstance(c, str)]
    if sum(map(len, inserts)) > MAX_INSERT:
        raise _invalid(f"An op may insert at most {MAX_INSERT} characters.")
    if any(_UNSTORABLE.search(text) for text in inserts):
        raise _invalid("An insert may not contain NUL or an unpaired surrogate.")
    if doc_length is not None:
        _check_fits(op, doc_length)


def base_length(op: object) -> int:
    """The shortest document the op applies to: what it retains and deletes."""
    return _span(_check(op))


def length_change(op: object) -> int:
    """How many characters longer the op makes a document (negative: shorter)."""
    return sum(len(c) if isinstance(c, str) else min(c, 0) for c in _check(op))


def apply(doc: str, op: object) -> str:
    if not isinstance(doc, str):
        raise _invalid("The document must be a string.")
    checked = _check(op)
    _check_fits(checked, len(doc))
    parts: list[str] = []
    position = 0
    for component in checked:
        if isinstance(component, str):
            parts.append(component)
        elif component > 0:
            parts.append(doc[position : position + component])
            position += component
        else:
            position -= component
    parts.append(doc[position:])
    return "".join(parts)


class _Builder:
    """Appends components, merging neighbours of one kind; ``finish`` gives a normalized op."""

    __slots__ = ("_count", "_op", "_texts")

    def __init__(self) -> None:
        self._op: Op = []
        self._texts: list[str] = []  # joined once at the end: += on a long insert is quadratic
        self._count = 0  # a pending retain (> 0) or delete (< 0); never pending with texts

    def push(self, component: Component) -> None:
        if isinstance(component, str):
            if component:
                if not self._texts:
                    self._flush()
                self._texts.append(component)
        elif component:
            if self._texts or (self._count > 0) != (component > 0):
                self._flush()
            self._count += component

    def _flush(self) -> None:
        if self._texts:
            self._op.append("".join(self._texts))
            self._texts = []
        if self._count:
            self._op.append(self._count)
            self._count = 0

    def finish(self) -> Op:
        if self._count > 0:
            self._count = 0  # a trailing retain says nothing
        self._flush()
        return self._op


def normalize(op: object) -> Op:
    """The same op with neighbours of one kind merged and no trailing retain."""
    builder = _Builder()
    for component in _check(op):
        builder.push(component)
    return builder.finish()


def _kind(component: Component) -> Kind | None:
    if isinstance(component, str):
        return "insert"
    return "delete" if component < 0 else None


class _Reader:
    """Takes an op apart from the front, piece by piece; past its end it retains forever."""

    __slots__ = ("_index", "_offset", "_op")

    def __init__(self, op: Op) -> None:
        self._op = op
        self._index = 0
        self._offset = 0  # into the current component; slicing the rest each time is quadratic

    def next_is_insert(self) -> bool:
        return self._index < len(self._op) and isinstance(self._op[self._index], str)

    def take(self, limit: int, whole: Kind) -> Component:
        """The next piece, at most ``limit`` long unless of the kind ``whole``, which comes whole.

        Past the end of the op, a retain of ``limit``.
        """
        if self._index == len(self._op):
            return limit
        return self._cut(None if _kind(self._op[self._index]) == whole else limit)

    def take_rest(self) -> Component | None:
        """The rest of the current component; None at the end."""
        return None if self._index == len(self._op) else self._cut(None)

    def _cut(self, limit: int | None) -> Component:
        component, start = self._op[self._index], self._offset
        size = len(component) if isinstance(component, str) else abs(component)
        end = size if limit is None else min(size, start + limit)
        if end == size:
            self._index, self._offset = self._index + 1, 0
        else:
            self._offset = end
        if isinstance(component, str):
            return component if start == 0 and end == size else component[start:end]
        return end - start if component > 0 else start - end

    def drain_into(self, builder: _Builder) -> None:
        while (piece := self.take_rest()) is not None:
            builder.push(piece)


def compose(a: object, b: object) -> Op:
    """One op doing ``a`` then ``b``."""
    checked_b = _check(b)
    reader, out = _Reader(_check(a)), _Builder()
    for component in checked_b:
        if isinstance(component, str):
            out.push(component)
        elif component > 0:
            _compose_retain(reader, out, component)
        else:
            _compose_delete(reader, out, -component)
    reader.drain_into(out)
    return out.finish()


def _compose_retain(reader: _Reader, out: _Builder, length: int) -> None:
    while length > 0:
        piece = reader.take(length, "delete")
        out.push(piece)
        if isinstance(piece, str):
            length -= len(piece)
        elif piece > 0:
            length -= piece
        # What ``a`` deleted is not there for ``b`` to retain: it uses none of ``length``.


def _compose_delete(reader: _Reader, out: _Builder, length: int) -> None:
    while length > 0:
        piece = reader.take(length, "delete")
        if isinstance(piece, str):
            length -= len(piece)  # inserted by ``a``, deleted by ``b``: never there at all
        elif piece > 0:
            out.push(-piece)
            length -= piece
        else:
            out.push(piece)


def transform(op: object, other: object, side: Side) -> Op:
    """``op`` moved past ``other`` (both made on one document), to apply after ``other``.

    ``side="left"`` puts ``op``'s insert before ``other``'s at one position.
    """
    if side not in ("left", "right"):
        raise _invalid('The side must be "left" or "right".')
    # Normalized, so that the left side's insert at a tie is all of it, not only its first part.
    reader, out = _Reader(normalize(op)), _Builder()
    for component in normalize(other):
        if isinstance(component, str):
            if side == "left" and reader.next_is_insert():
                out.push(reader.take(0, "insert"))  # all of it: inserts come whole
            out.push(len(component))
        elif component > 0:
            _transform_retain(reader, out, component)
        else:
            _transform_delete(reader, out, -component)
    reader.drain_into(out)
    return out.finish()


def _transform_retain(reader: _Reader, out: _Builder, length: int) -> None:
    while length > 0:
        piece = reader.take(length, "insert")
        out.push(piece)
        if not isinstance(piece, str):  # ``op``'s inserts use none of ``other``'s length
            length -= abs(piece)


def _transform_delete(reader: _Reader, out: _Builder, length: int) -> None:
    # ``other`` deleted these characters already: ``op`` neither retains nor deletes them.
    while length > 0:
        piece = reader.take(length, "insert")
        if isinstance(piece, str):
            out.push(piece)
        else:
            length -= abs(piece)


def transform_cursor(cursor: object, op: object, is_own_op: bool = False) -> int:
    """Where a cursor at code point ``cursor`` is after ``op``.

    A cursor inside deleted text goes to where the text was. An insert exactly at the cursor
    leaves it before the inserted text, unless the op is the cursor owner's own (they typed it),
    which leaves it after. (ottypes/text moves an owner's cursor to the end of their op instead.)
    """
    if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
        raise _invalid("A cursor must be a non-negative integer.")
    moved, position = cursor, 0  # ``position`` walks the document before the op
    for component in _check(op):
        if position > cursor:
            break
        if isinstance(component, str):
            if position < cursor or is_own_op:
                moved += len(component)
        elif component > 0:
            position += component
        else:
            moved -= min(-component, cursor - position)
            position -= component
    return moved


def invert(op: object, doc: str) -> Op:
    """The op that undoes ``op`` applied to ``doc`` (deletes carry counts, so it needs ``doc``)."""
    if not isinstance(doc, str):
        raise _invalid("The document must be a string.")
    checked = _check(op)
    _check_fits(checked, len(doc))
    out, position = _Builder(), 0
    for component in checked:
        if isinstance(component, str):
            out.push(-len(component))
        elif component > 0:
            out.push(component)
            position += component
        else:
            out.push(doc[position : position - component])
            position -= component
    return out.finish()
