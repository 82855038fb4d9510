"""Fuzz the conflict policies of form field properties (forms_live/merge.py).

The bytes decode (atheris.FuzzedDataProvider) to one of three cases, each checked against the
properties of tests/unit/forms_live/test_merge.py: texts for ``text_diff`` and ``merge_text``
(a diff turns old into new; an unchanged side gives the other; edits either side of a marker
both survive; the server's merge is what the proposing client converges to), option lists for
``merge_options`` (every addition and no removal, once; current's order, then proposed's), and
one change for ``decide`` under each policy.

    python -m tests.fuzz.harness_merge .fuzz/merge -max_total_time=60
"""

from __future__ import annotations

from typing import Any

import atheris

from tests.fuzz.common import expect, fuzz, instrumented

with instrumented(__name__ == "__main__"):
    from collab import ot
    from forms_live import merge

# A small alphabet, so that texts share prefixes, suffixes and repeats; "|" is the marker.
ALPHABET = "ab \u00e9\U0001f600"
OPTION_POOL = ["a", "b", "ab", "\u00e9", "\U0001f600", ""]
MAX_TEXT = 12
MAX_OPTIONS = 6


def text(fdp: atheris.FuzzedDataProvider) -> str:
    if fdp.ConsumeBool():
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, MAX_TEXT))
    size = fdp.ConsumeIntInRange(0, MAX_TEXT)
    return "".join(ALPHABET[fdp.ConsumeIntInRange(0, len(ALPHABET) - 1)] for _ in range(size))


def options(fdp: atheris.FuzzedDataProvider) -> list[str]:
    """Distinct options, mostly from a small pool so that the three lists overlap."""
    drawn = []
    for _ in range(fdp.ConsumeIntInRange(0, MAX_OPTIONS)):
        pool = fdp.ConsumeIntInRange(0, 3)
        drawn.append(fdp.PickValueInList(OPTION_POOL) if pool else fdp.ConsumeUnicode(2))
    return list(dict.fromkeys(drawn))


def scalar(fdp: atheris.FuzzedDataProvider) -> Any:
    pick = fdp.ConsumeIntInRange(0, 4)
    if pick == 0:
        return None
    if pick == 1:
        return fdp.ConsumeBool()
    if pick == 2:
        return fdp.ConsumeIntInRange(-2, 2)
    if pick == 3:
        return text(fdp)
    return {"min": fdp.ConsumeIntInRange(0, 2)}


def is_subsequence(items: list[Any], of: list[Any]) -> bool:
    rest = iter(of)
    return all(item in rest for item in items)


def kind_of(component: Any) -> str:
    if isinstance(component, str):
        return "insert"
    return "retain" if component > 0 else "delete"


# --- text ------------------------------------------------------------------------------------


def check_diff(old: str, new: str) -> None:
    op = merge.text_diff(old, new)
    expect(ot.apply(old, op) == new, "text_diff does not turn old into new", old, new, op)
    expect(ot.normalize(op) == op, "text_diff is not normalized", op)
    order = ["retain", "delete", "insert"]
    expect(is_subsequence([kind_of(c) for c in op], order), "not one replacement", op)


def check_text(base: str, current: str, proposed: str, other: str) -> None:
    for old, new in ((base, current), (base, proposed), (current, other)):
        check_diff(old, new)
    expect(merge.merge_text(base, base, proposed) == proposed, "unchanged current", base)
    expect(merge.merge_text(base, current, base) == current, "unchanged proposal", base)
    committed, submitted = merge.text_diff(base, current), merge.text_diff(base, proposed)
    on_client = ot.apply(proposed, ot.transform(committed, submitted, "right"))
    merged = merge.merge_text(base, current, proposed)
    expect(merged == on_client, "server and client diverge", base, current, proposed, merged)
    if not any("|" in part for part in (base, current, proposed, other)):
        check_disjoint(left=base, right=current, new_left=proposed, new_right=other)


def check_disjoint(*, left: str, right: str, new_left: str, new_right: str) -> None:
    """Edits on either side of a marker found nowhere else: the merge keeps both."""
    base = f"{left}|{right}"
    edits_left, edits_right = f"{new_left}|{right}", f"{left}|{new_right}"
    both = f"{new_left}|{new_right}"
    for current, proposed in ((edits_left, edits_right), (edits_right, edits_left)):
        merged = merge.merge_text(base, current, proposed)
        expect(merged == both, "a disjoint edit was lost", base, current, proposed, merged)


# --- options ---------------------------------------------------------------------------------


def check_options(base: list[str], current: list[str], proposed: list[str]) -> None:
    merged = merge.merge_options(base, current, proposed)
    added = (set(current) | set(proposed)) - set(base)
    removed = (set(base) - set(current)) | (set(base) - set(proposed))
    case = (base, current, proposed, merged)
    expect(added <= set(merged), "an addition was lost", *case)
    expect(not removed & set(merged), "a removal came back", *case)
    expect(set(merged) <= set(current) | set(proposed), "an option from nowhere", *case)
    expect(len(merged) == len(set(merged)), "an option twice", *case)
    expect(merge.merge_options(base, base, proposed) == proposed, "unchanged current", *case)
    expect(merge.merge_options(base, current, base) == current, "unchanged proposal", *case)
    if current != base and proposed != base:
        from_current = [option for option in merged if option in current]
        expect(merged[: len(from_current)] == from_current, "current's options not first", *case)
        expect(is_subsequence(from_current, current), "current's order lost", *case)
        later = merged[len(from_current) :]
        expect(is_subsequence(later, proposed), "proposed's order lost", *case)


# --- decide ----------------------------------------------------------------------------------

VALUES = {"text": text, "options": options, "scalar": scalar}
MERGES = {"text": "merge_text", "options": "merge_options"}  # looked up at each call


def check_decide(
    policy: str, kind: str, base: Any, current: Any, proposed: Any, concurrent: bool
) -> None:
    decision = merge.decide(
        policy, kind, base=base, current=current, proposed=proposed, concurrent=concurrent
    )
    case = (policy, kind, base, current, proposed, concurrent, decision)
    if proposed == current:
        expected = merge.Decision("unchanged", current)
    elif not concurrent or policy == "lww":
        expected = merge.Decision("applied", proposed)
    elif policy == "manual":
        conflict = current != base
        expected = merge.Decision(*(("conflict", current) if conflict else ("applied", proposed)))
    elif kind in MERGES:
        expected = merge.Decision("merged", getattr(merge, MERGES[kind])(base, current, proposed))
    else:
        expected = merge.Decision("applied", proposed)  # one scalar: the later wins
    expect(decision == expected, "decide", *case, expected)


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    case = fdp.ConsumeIntInRange(0, 2)
    if case == 0:
        check_text(text(fdp), text(fdp), text(fdp), text(fdp))
    elif case == 1:
        check_options(options(fdp), options(fdp), options(fdp))
    else:
        policy = fdp.PickValueInList(list(merge.POLICIES))
        kind = fdp.PickValueInList(list(merge.KINDS))
        base, current = VALUES[kind](fdp), VALUES[kind](fdp)
        # Often a repeat: an unchanged side is where the rules branch.
        proposed = fdp.PickValueInList([VALUES[kind](fdp), base, current])
        check_decide(policy, kind, base, current, proposed, fdp.ConsumeBool())


if __name__ == "__main__":
    fuzz(TestOneInput)
