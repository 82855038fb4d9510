"""The browser's OT type (config/realtime/static/realtime/ot.js) against the server's
(collab/ot.py): the same results for apply, normalize, compose, transform (both sides),
transform_cursor and the UTF-16 conversions, on random documents with astral characters.

Node runs the module once for a batch of cases (a process per case would take minutes).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from django.contrib.staticfiles import finders

from collab import ot
from tests.unit import node

ROOT = Path(__file__).resolve().parents[3]
MODULE = ROOT / "config/realtime/static/realtime/ot.js"
CASES = 400
ALPHABET = "ab xyé中👋🎉"  # one- and two-unit characters in UTF-16

COMPARED = """
const out = data.map((c) => ({
  apply: ot.apply(c.doc, c.a),
  normalize: ot.normalize(c.a),
  compose: ot.compose(c.a, c.b_after_a),
  left: ot.transform(c.a, c.b, "left"),
  right: ot.transform(c.b, c.a, "right"),
  cursor: ot.transformCursor(c.cursor, c.a, false),
  own_cursor: ot.transformCursor(c.cursor, c.a, true),
  to_utf16: ot.toUtf16(c.doc, c.cursor),
  to_points: ot.toCodePoints(c.doc, ot.toUtf16(c.doc, c.cursor)),
  length: ot.length(c.doc),
}));
process.stdout.write(JSON.stringify(out));
"""


def random_text(rng: random.Random, most: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, most)))


def random_op(rng: random.Random, doc: str) -> list:
    """A valid op for ``doc``, possibly unnormalized (neighbours of one kind, trailing retain)."""
    op: list = []
    left = len(doc)
    while left > 0 or rng.random() < 0.3:
        choice = rng.random()
        if choice < 0.3 or left == 0:
            op.append(random_text(rng, 4) or "z")
        elif choice < 0.65:
            n = rng.randint(1, left)
            op.append(n)
            left -= n
        else:
            n = rng.randint(1, left)
            op.append(-n)
            left -= n
        if left == 0 and rng.random() < 0.5:
            break
    return op


def case(rng: random.Random) -> dict:
    doc = random_text(rng, 12)
    a, b = random_op(rng, doc), random_op(rng, doc)
    return {
        "doc": doc,
        "a": a,
        "b": b,
        "b_after_a": random_op(rng, ot.apply(doc, a)),
        "cursor": rng.randint(0, len(doc)),
    }


def expected(c: dict) -> dict:
    utf16 = len(c["doc"][: c["cursor"]].encode("utf-16-le")) // 2
    return {
        "apply": ot.apply(c["doc"], c["a"]),
        "normalize": ot.normalize(c["a"]),
        "compose": ot.compose(c["a"], c["b_after_a"]),
        "left": ot.transform(c["a"], c["b"], "left"),
        "right": ot.transform(c["b"], c["a"], "right"),
        "cursor": ot.transform_cursor(c["cursor"], c["a"], False),
        "own_cursor": ot.transform_cursor(c["cursor"], c["a"], True),
        "to_utf16": utf16,
        "to_points": c["cursor"],
        "length": len(c["doc"]),
    }


IMPORT = f"import * as ot from {json.dumps(MODULE.as_uri())};"


def test_the_browser_and_the_server_transform_alike():
    rng = random.Random(20261206)
    cases = [case(rng) for _ in range(CASES)]

    got = node.run_node(IMPORT, COMPARED, cases)

    for c, result in zip(cases, got, strict=True):
        assert result == expected(c), c


def test_the_tie_and_the_convergence_example_of_the_module_docstrings():
    got = node.run_node(
        IMPORT,
        'process.stdout.write(JSON.stringify([ot.apply("Hello world", [6, -5, "there"]),'
        ' ot.transform(["a"], ["b"], "left"), ot.transform(["b"], ["a"], "right"),'
        ' ot.apply("a👋b", [2, -1, "c"])]));',
    )

    assert got == ["Hello there", ["a"], [1, "b"], "a👋c"]


def test_the_module_is_a_static_file_the_site_serves():
    assert Path(finders.find("realtime/ot.js")) == MODULE
