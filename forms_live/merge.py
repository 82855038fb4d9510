"""What happens when two form builders change one property of one field. Pure.

A change names one field property and the form revision its builder saw (the base). The
server serialises the changes to a form and, holding the form's row lock, calls ``decide`` with
the property's value at the base revision (``base``), its value now (``current``), the builder's
value (``proposed``) and whether another change to this property committed after the base
revision (``concurrent``). A property is of one ``KIND``:

- ``"text"``: a string (label, help, placeholder), merged character by character through
  collab.ot; positions are code points;
- ``"options"``: the option list of a choice field, distinct strings, merged as a set;
- ``"scalar"``: any other JSON value (required, rules, type...), compared with ``==``.

The form's ``POLICY`` says what a concurrent change does: ``"lww"`` (the later commit wins),
``"merge"`` (both changes are kept where the kind allows) or ``"manual"`` (the later change is
refused as a conflict, and the builder resolves it by hand):

    >>> decide("merge", "text", base="Name", current="Full name", proposed="Name?",
    ...        concurrent=True)
    Decision(outcome='merged', value='Full name?')
    >>> decide("manual", "text", base="Name", current="Full name", proposed="Name?",
    ...        concurrent=True)
    Decision(outcome='conflict', value='Full name')
    >>> merge_options(["red", "green"], ["red", "green", "blue"], ["green", "pink"])
    ['green', 'blue', 'pink']

Values are taken as already validated for their kind; see forms_live/validation.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collab.ot import Op, apply, normalize, transform

POLICIES = ("lww", "merge", "manual")
KINDS = ("text", "options", "scalar")


@dataclass(frozen=True, slots=True)
class Decision:
    """``outcome`` is "applied", "merged", "unchanged" or "conflict"; ``value`` is the
    property's value after the change (on "conflict" the current value, kept)."""

    outcome: str
    value: Any


def decide(
    policy: str, kind: str, *, base: Any, current: Any, proposed: Any, concurrent: bool
) -> Decision:
    """What a change proposing ``proposed`` for a property now at ``current`` does."""
    if policy not in POLICIES:
        raise ValueError(f"Unknown conflict policy {policy!r}; expected one of {POLICIES}.")
    if kind not in KINDS:
        raise ValueError(f"Unknown property kind {kind!r}; expected one of {KINDS}.")
    # First, for every policy: merging a change with an identical one would double its inserts.
    if proposed == current:
        return Decision("unchanged", current)
    if not concurrent or policy == "lww":
        # Commits are serialised under the form's lock, so "later" is well defined.
        return Decision("applied", proposed)
    if policy == "manual":
        # The concurrent changes came back to what the builder saw: nothing of theirs is lost.
        return Decision("applied", proposed) if current == base else Decision("conflict", current)
    if kind == "text":
        return Decision("merged", merge_text(base, current, proposed))
    if kind == "options":
        return Decision("merged", merge_options(base, current, proposed))
    return Decision("applied", proposed)  # one scalar cannot hold two values: the later wins


def text_diff(old: str, new: str) -> Op:
    """An op turning ``old`` into ``new``: keep the common prefix and suffix, replace the rest.

    >>> text_diff("Full name", "First name")
    [1, -3, 'irst']
    """
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    deleted = len(old) - prefix - suffix
    # Leave out the empty pieces (an op has no 0 or ""); normalize drops the trailing retain.
    return normalize([c for c in (prefix, -deleted, new[prefix : len(new) - suffix]) if c])


def merge_text(base: str, current: str, proposed: str) -> str:
    """``proposed``'s edit of ``base`` carried onto ``current``, which was edited meanwhile.

    The proposal is the later submission, so, as in the collab server, it is transformed
    against the committed edit with side "left": at one position its insert comes first.

    >>> merge_text("colour", "Colour", "colours")
    'Colours'
    """
    committed, submitted = text_diff(base, current), text_diff(base, proposed)
    return apply(current, transform(submitted, committed, "left"))


def merge_options(
    base: Sequence[str], current: Sequence[str], proposed: Sequence[str]
) -> list[str]:
    """The option lists of two concurrent changes of ``base``, merged.

    What either side removed is gone and what either side added is there, once: the current
    list in its order, then proposed's additions in proposed's order. When one side left the
    list as it was, the other side's list wins whole, so that a reorder alone is not lost.
    """
    if list(current) == list(base):
        return list(dict.fromkeys(proposed))
    if list(proposed) == list(base):
        return list(dict.fromkeys(current))
    before, after = set(base), set(proposed)
    kept = [option for option in current if option in after or option not in before]
    added = [option for option in proposed if option not in before]
    return list(dict.fromkeys(kept + added))
