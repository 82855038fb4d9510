// The text OT type of collaborative documents, in the browser: the same type as collab/ot.py
// on the server (ottypes/text, ot.js), so that both sides transform alike.
//
// An op is a list of components walking the document from its start: a positive integer n
// retains n characters, a non-empty string inserts itself, a negative integer -n deletes n.
//
//   apply("Hello world", [6, -5, "there"])            // "Hello there"
//   transform(["a"], ["b"], "left")                   // ["a"]
//   transform(["b"], ["a"], "right")                  // [1, "b"]
//
// Characters are Unicode code points, as on the server: "👋" is one character in an op, though
// it is two UTF-16 units in a JavaScript string. Editors measure in UTF-16, so convert their
// offsets with toCodePoints / toUtf16 before building ops and after transforming cursors.
// Plain ES module, no build step, no dependency.

export class OTError extends Error {}

const isInsert = (c) => typeof c === "string";

/** Code points of a string, counted as the server counts them. */
export function length(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/** A UTF-16 offset of ``text`` as a code point offset (an offset inside a pair rounds down). */
export function toCodePoints(text, utf16Offset) {
  let units = 0;
  let points = 0;
  for (const ch of text) {
    if (units + ch.length > utf16Offset) break;
    units += ch.length;
    points += 1;
  }
  return points;
}

/** A code point offset of ``text`` as a UTF-16 offset. */
export function toUtf16(text, codePointOffset) {
  let units = 0;
  let points = 0;
  for (const ch of text) {
    if (points === codePointOffset) break;
    units += ch.length;
    points += 1;
  }
  return units;
}

function check(op) {
  if (!Array.isArray(op)) throw new OTError("An op must be a list of components.");
  op.forEach((c, i) => {
    if (typeof c === "string") {
      if (c === "") throw new OTError(`Component ${i} of the op is an empty insert.`);
    } else if (!Number.isInteger(c)) {
      throw new OTError(`Component ${i} of the op must be an integer or a string.`);
    } else if (c === 0) {
      throw new OTError(`Component ${i} of the op is 0; counts start at 1.`);
    }
  });
  return op;
}

function span(op) {
  return op.reduce((sum, c) => (isInsert(c) ? sum : sum + Math.abs(c)), 0);
}

export function apply(doc, op) {
  check(op);
  const chars = Array.from(doc);
  if (span(op) > chars.length) {
    throw new OTError(`The op is longer than the document (${chars.length} characters).`);
  }
  const parts = [];
  let position = 0;
  for (const c of op) {
    if (isInsert(c)) parts.push(c);
    else if (c > 0) {
      parts.push(chars.slice(position, position + c).join(""));
      position += c;
    } else position -= c;
  }
  parts.push(chars.slice(position).join(""));
  return parts.join("");
}

// Appends components, merging neighbours of one kind; finish() gives a normalized op.
class Builder {
  constructor() {
    this.op = [];
    this.text = "";
    this.count = 0; // a pending retain (> 0) or delete (< 0); never pending with text
  }

  push(c) {
    if (isInsert(c)) {
      if (c === "") return;
      if (this.text === "") this.flush();
      this.text += c;
    } else if (c !== 0) {
      if (this.text !== "" || this.count > 0 !== c > 0) this.flush();
      this.count += c;
    }
  }

  flush() {
    if (this.text !== "") {
      this.op.push(this.text);
      this.text = "";
    }
    if (this.count !== 0) {
      this.op.push(this.count);
      this.count = 0;
    }
  }

  finish() {
    if (this.count > 0) this.count = 0; // a trailing retain says nothing
    this.flush();
    return this.op;
  }
}

export function normalize(op) {
  const out = new Builder();
  for (const c of check(op)) out.push(c);
  return out.finish();
}

// A reader holds inserts as arrays of code points.
const kind = (c) => (Array.isArray(c) ? "insert" : c < 0 ? "delete" : null);

// Takes an op apart from the front; past its end it retains forever. Inserts are held as
// arrays of code points, so that pieces are cut by code point.
class Reader {
  constructor(op) {
    this.op = op.map((c) => (isInsert(c) ? Array.from(c) : c));
    this.index = 0;
    this.offset = 0;
  }

  nextIsInsert() {
    return this.index < this.op.length && Array.isArray(this.op[this.index]);
  }

  take(limit, whole) {
    if (this.index === this.op.length) return limit;
    const c = this.op[this.index];
    return this.cut(kind(c) === whole ? null : limit);
  }

  takeRest() {
    return this.index === this.op.length ? null : this.cut(null);
  }

  cut(limit) {
    const c = this.op[this.index];
    const start = this.offset;
    const size = Array.isArray(c) ? c.length : Math.abs(c);
    const end = limit === null ? size : Math.min(size, start + limit);
    if (end === size) {
      this.index += 1;
      this.offset = 0;
    } else this.offset = end;
    if (Array.isArray(c)) return c.slice(start, end).join("");
    return c > 0 ? end - start : start - end;
  }

  drainInto(out) {
    for (let piece = this.takeRest(); piece !== null; piece = this.takeRest()) out.push(piece);
  }
}

/** One op doing ``a`` then ``b``. */
export function compose(a, b) {
  check(b);
  const reader = new Reader(check(a));
  const out = new Builder();
  for (const c of b) {
    if (isInsert(c)) out.push(c);
    else if (c > 0) {
      let left = c;
      while (left > 0) {
        const piece = reader.take(left, "delete");
        out.push(piece);
        if (isInsert(piece)) left -= length(piece);
        else if (piece > 0) left -= piece;
        // what a deleted is not there for b to retain
      }
    } else {
      let left = -c;
      while (left > 0) {
        const piece = reader.take(left, "delete");
        if (isInsert(piece)) left -= length(piece); // inserted by a, deleted by b
        else if (piece > 0) {
          out.push(-piece);
          left -= piece;
        } else out.push(piece);
      }
    }
  }
  reader.drainInto(out);
  return out.finish();
}

/** ``op`` moved past ``other`` (both made on one document); "left" puts op's insert first. */
export function transform(op, other, side) {
  if (side !== "left" && side !== "right") throw new OTError('The side must be "left" or "right".');
  const reader = new Reader(normalize(op));
  const out = new Builder();
  for (const c of normalize(other)) {
    if (isInsert(c)) {
      if (side === "left" && reader.nextIsInsert()) out.push(reader.take(0, "insert"));
      out.push(length(c));
    } else if (c > 0) {
      let left = c;
      while (left > 0) {
        const piece = reader.take(left, "insert");
        out.push(piece);
        if (!isInsert(piece)) left -= Math.abs(piece);
      }
    } else {
      let left = -c; // other deleted these already: op neither retains nor deletes them
      while (left > 0) {
        const piece = reader.take(left, "insert");
        if (isInsert(piece)) out.push(piece);
        else left -= Math.abs(piece);
      }
    }
  }
  reader.drainInto(out);
  return out.finish();
}

/** Where a cursor at code point ``cursor`` is after ``op`` (as collab/ot.py). */
export function transformCursor(cursor, op, isOwnOp = false) {
  if (!Number.isInteger(cursor) || cursor < 0) {
    throw new OTError("A cursor must be a non-negative integer.");
  }
  let moved = cursor;
  let position = 0;
  for (const c of check(op)) {
    if (position > cursor) break;
    if (isInsert(c)) {
      if (position < cursor || isOwnOp) moved += length(c);
    } else if (c > 0) position += c;
    else {
      moved -= Math.min(-c, cursor - position);
      position -= c;
    }
  }
  return moved;
}
