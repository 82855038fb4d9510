"""Conflict policies for form field properties (forms_live/merge.py): decide and the merges."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from collab.ot import apply, normalize, transform
from forms_live import merge
from forms_live.merge import KINDS, POLICIES, Decision, decide, merge_options, merge_text, text_diff

# The merges run more examples than the rules of decide, which are a few comparisons.
MERGES = settings(max_examples=1_000, deadline=None)
RULES = settings(max_examples=300, deadline=None)

# --- strategies ------------------------------------------------------------------------------

# Arbitrary unicode, and a small alphabet (an accent, an emoji outside the BMP) so that two
# texts share prefixes, suffixes and repeats, where a diff or a merge can go wrong.
texts = st.one_of(st.text(), st.text(alphabet="ab \u00e9\U0001f600", max_size=10))
unmarked = texts.map(lambda text: text.replace("|", ""))
# Short options from a small pool collide across base, current and proposed; some arbitrary.
option = st.one_of(st.text(alphabet="ab\u00e9\U0001f600", max_size=2), st.text(max_size=3))
option_lists = st.lists(option, unique=True, max_size=8)
scalars = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
VALUES = {"text": texts, "options": option_lists, "scalar": scalars}


@st.composite
def changes(draw, kinds=KINDS):
    """A kind and its (base, current, proposed); proposed often repeats base or current."""
    kind = draw(st.sampled_from(kinds))
    base = draw(VALUES[kind])
    current = draw(st.one_of(VALUES[kind], st.just(base)))
    proposed = draw(st.one_of(VALUES[kind], st.sampled_from([base, current])))
    return kind, base, current, proposed


@st.composite
def disjoint_edits(draw):
    """``base`` as ``left + "|" + right``, an edit of ``left``, one of ``right``, and both.

    The marker is nowhere else, so neither diff reaches across it. Any shared text would not
    do: from "0" to "00" the diff inserts at the end, so base "0" edited to "00" and to "01"
    are two inserts at one position, not edits of either side of the middle "0".
    """
    left, right, new_left, new_right = (draw(unmarked) for _ in range(4))
    return (
        left + "|" + right,
        new_left + "|" + right,
        left + "|" + new_right,
        new_left + "|" + new_right,
    )


def component_kind(component):
    if isinstance(component, str):
        return "insert"
    return "retain" if component > 0 else "delete"


def is_subsequence(items, of):
    rest = iter(of)
    return all(item in rest for item in items)


# --- the module docstring --------------------------------------------------------------------


def test_the_docstring_examples_hold():
    assert doctest.testmod(merge).failed == 0


# --- text_diff -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("", "", []),
        ("same", "same", []),
        ("", "new", ["new"]),
        ("old", "", [-3]),
        ("Name", "Name?", [4, "?"]),
        ("aXb", "aYb", [1, -1, "Y"]),
        ("aa", "aaa", [2, "a"]),  # the repeat is found at the end, not counted twice
        ("a\U0001f600b", "a\U0001f44db", [1, -1, "\U0001f44d"]),  # code points, not UTF-16
    ],
)
def test_text_diff_keeps_the_common_prefix_and_suffix(old, new, expected):
    assert text_diff(old, new) == expected


@MERGES
@given(texts, texts)
def test_text_diff_turns_old_into_new_with_one_normalized_replacement(old, new):
    op = text_diff(old, new)

    assert apply(old, op) == new
    assert normalize(op) == op
    assert is_subsequence(map(component_kind, op), ["retain", "delete", "insert"])


# --- merge_text ------------------------------------------------------------------------------


@MERGES
@given(texts, texts)
def test_merging_text_with_an_unchanged_side_gives_the_other_side(base, edited):
    assert merge_text(base, base, edited) == edited
    assert merge_text(base, edited, base) == edited


@MERGES
@given(disjoint_edits())
def test_merging_text_edits_of_disjoint_regions_keeps_both(edits):
    base, edits_left, edits_right, both = edits

    assert merge_text(base, edits_left, edits_right) == both
    assert merge_text(base, edits_right, edits_left) == both


@MERGES
@given(texts, texts, texts)
def test_the_server_merge_is_what_the_proposing_client_converges_to(base, current, proposed):
    # The proposer's client holds ``proposed`` and receives the committed edit, transformed
    # with the other side: both must end on one text (TP1 through text_diff).
    committed, submitted = text_diff(base, current), text_diff(base, proposed)
    on_client = apply(proposed, transform(committed, submitted, "right"))

    assert merge_text(base, current, proposed) == on_client


# --- merge_options ---------------------------------------------------------------------------


@MERGES
@given(option_lists, option_lists, option_lists)
def test_merged_options_keep_every_addition_and_no_removal_once(base, current, proposed):
    merged = merge_options(base, current, proposed)

    added = (set(current) | set(proposed)) - set(base)
    removed = (set(base) - set(current)) | (set(base) - set(proposed))
    assert added <= set(merged)
    assert not removed & set(merged)
    assert set(merged) <= set(current) | set(proposed)
    assert len(merged) == len(set(merged))


@MERGES
@given(option_lists, option_lists, option_lists)
def test_merged_options_follow_current_then_proposed_additions(base, current, proposed):
    assume(current != base and proposed != base)
    merged = merge_options(base, current, proposed)

    from_current = [option for option in merged if option in current]
    assert merged[: len(from_current)] == from_current
    assert is_subsequence(from_current, current)
    assert is_subsequence(merged[len(from_current) :], proposed)


@MERGES
@given(option_lists, option_lists)
def test_merging_options_with_an_unchanged_side_gives_the_other_side(base, edited):
    # Whole, order included: a builder who only reordered the options keeps the new order.
    assert merge_options(base, base, edited) == edited
    assert merge_options(base, edited, base) == edited


def test_merged_options_drop_what_either_side_removed():
    merged = merge_options(["a", "b", "c"], ["c", "a", "x"], ["a", "c", "y", "b2"])

    assert merged == ["c", "a", "x", "y", "b2"]


# --- decide ----------------------------------------------------------------------------------


@RULES
@given(st.sampled_from(POLICIES), changes(), st.booleans())
def test_a_change_to_the_current_value_is_unchanged_under_every_policy(policy, change, concurrent):
    kind, base, current, _ = change

    decision = decide(
        policy, kind, base=base, current=current, proposed=current, concurrent=concurrent
    )

    assert decision == Decision("unchanged", current)


@RULES
@given(st.sampled_from(POLICIES), changes())
def test_a_change_without_a_concurrent_one_is_applied(policy, change):
    kind, base, current, proposed = change
    assume(proposed != current)

    decision = decide(policy, kind, base=base, current=current, proposed=proposed, concurrent=False)

    assert decision == Decision("applied", proposed)


@RULES
@given(changes(), st.booleans())
def test_last_writer_wins_always_ends_with_the_proposal(change, concurrent):
    kind, base, current, proposed = change

    decision = decide(
        "lww", kind, base=base, current=current, proposed=proposed, concurrent=concurrent
    )

    assert decision.value == proposed
    assert decision.outcome == ("unchanged" if proposed == current else "applied")


@RULES
@given(changes(), st.booleans())
def test_manual_conflicts_exactly_when_a_concurrent_change_stands(change, concurrent):
    kind, base, current, proposed = change

    decision = decide(
        "manual", kind, base=base, current=current, proposed=proposed, concurrent=concurrent
    )

    conflict = concurrent and current != base and proposed != current
    assert (decision.outcome == "conflict") == conflict
    assert decision.value == (current if conflict or proposed == current else proposed)


@MERGES
@given(changes(kinds=("text", "options")))
def test_merge_merges_concurrent_text_and_options(change):
    kind, base, current, proposed = change
    assume(proposed != current)
    merged = {"text": merge_text, "options": merge_options}[kind](base, current, proposed)

    decision = decide("merge", kind, base=base, current=current, proposed=proposed, concurrent=True)

    assert decision == Decision("merged", merged)


@RULES
@given(changes(kinds=("scalar",)))
def test_merge_lets_the_later_scalar_win(change):
    _, base, current, proposed = change
    assume(proposed != current)

    decision = decide(
        "merge", "scalar", base=base, current=current, proposed=proposed, concurrent=True
    )

    assert decision == Decision("applied", proposed)


@pytest.mark.parametrize(("policy", "kind"), [("fifo", "text"), ("merge", "rich_text"), ("", "")])
def test_an_unknown_policy_or_kind_is_refused(policy, kind):
    with pytest.raises(ValueError, match="Unknown"):
        decide(policy, kind, base="a", current="a", proposed="a", concurrent=False)


# --- two builders ----------------------------------------------------------------------------


class Property:
    """One field property on the server: its value at every revision, changes in commit order."""

    def __init__(self, policy, kind, value):
        self.policy, self.kind, self.values = policy, kind, [value]

    def submit(self, base_revision, proposed):
        decision = decide(
            self.policy,
            self.kind,
            base=self.values[base_revision],
            current=self.values[-1],
            proposed=proposed,
            concurrent=len(self.values) - 1 > base_revision,
        )
        if decision.outcome in ("applied", "merged"):
            self.values.append(decision.value)
        return decision


def two_builders(policy, kind, start, a, b):
    """A and B both saw revision 0; A commits first, then B. B's decision and the final value."""
    prop = Property(policy, kind, start)
    prop.submit(0, a)
    decision = prop.submit(0, b)
    return decision, prop.values[-1]


@RULES
@given(changes())
def test_two_builders_under_last_writer_wins_end_with_the_second(change):
    kind, start, a, b = change

    _, final = two_builders("lww", kind, start, a, b)

    assert final == b


@RULES
@given(changes())
def test_two_builders_under_manual_keep_the_first_and_report_a_conflict(change):
    kind, start, a, b = change
    assume(a != start and b != a)

    decision, final = two_builders("manual", kind, start, a, b)

    assert decision == Decision("conflict", a)
    assert final == a


@MERGES
@given(disjoint_edits())
def test_two_builders_merging_text_keep_both_disjoint_edits(edits):
    start, a, b, both = edits
    assume(a != b)

    decision, final = two_builders("merge", "text", start, a, b)

    assert decision.outcome == ("merged" if a != start else "applied")
    assert final == both


@MERGES
@given(option_lists, option_lists, option_lists)
def test_two_builders_merging_options_keep_both_sets_of_additions(start, a, b):
    decision, final = two_builders("merge", "options", start, a, b)

    assert decision.value == final
    assert set(final) == (set(a) & set(b)) | (set(a) - set(start)) | (set(b) - set(start))
