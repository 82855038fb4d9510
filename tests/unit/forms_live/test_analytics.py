"""Per-form figures: counting submissions, merging figures, the summary
(forms_live/analytics.py)."""

from __future__ import annotations

from functools import reduce
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from forms_live.analytics import (
    COMPLETED,
    STATUSES,
    FormStats,
    SubmissionFacts,
    lower_median,
)

# --- strategies ------------------------------------------------------------------------------

# A few shared values so ties and exact thresholds happen, the rest anywhere in epoch range.
times = st.one_of(
    st.sampled_from([0.0, 1.0, 1800.0, 1_700_000_000.0]),
    st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False),
)
spans = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 59.999, 1800.0]),
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
)
field_keys = st.none() | st.sampled_from(["", "name", "email", "age", "\u00e9t\u00e9"])
abandon_afters = st.sampled_from([1800.0, 60.0, 0.0]) | st.floats(
    min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False
)


@st.composite
def submission_facts(draw):
    """Consistent facts: submitted_at is None iff in progress, and never before the start."""
    status = draw(st.sampled_from(STATUSES))
    started_at = draw(times)
    submitted_at = None if status == "in_progress" else started_at + draw(spans)
    last_active_at = draw(st.none() | spans.map(lambda span: started_at + span))
    return SubmissionFacts(status, started_at, submitted_at, draw(field_keys), last_active_at)


fact_lists = st.lists(submission_facts(), max_size=12)
views = st.integers(0, 10**6)
counts = st.integers(1, 5)
stats = st.builds(
    FormStats,
    views=views,
    starts=st.integers(0, 100),
    completions=st.integers(0, 100),
    abandoned=st.integers(0, 100),
    durations=st.dictionaries(st.integers(0, 10**6), counts, max_size=5),
    drop_off=st.dictionaries(field_keys.map(lambda key: key or ""), counts, max_size=5),
)


def expanded(pairs):
    return sorted(value for value, count in pairs for _ in range(count))


# --- aggregation of parts = aggregation of the whole ----------------------------------------


@given(fact_lists, fact_lists, views, views, times, abandon_afters)
def test_of_the_whole_is_the_merge_of_the_parts(a, b, x, y, now, abandon_after):
    def of(facts, seen):
        return FormStats.of(facts, views=seen, now=now, abandon_after=abandon_after)

    whole = of(a + b, x + y)

    assert of(a, x).merge(of(b, y)) == whole
    assert of(a, x).merge(of(b, y)).summary() == whole.summary()


@given(fact_lists, times, st.data())
def test_of_any_split_merged_is_the_whole(facts, now, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(facts)), max_size=4)))
    parts = [facts[start:end] for start, end in pairwise([0, *cuts, len(facts)])]

    merged = reduce(FormStats.merge, (FormStats.of(p, now=now) for p in parts), FormStats())

    assert merged == FormStats.of(facts, now=now)


@given(fact_lists, times, st.data())
def test_of_does_not_depend_on_order(facts, now, data):
    shuffled = data.draw(st.permutations(facts))

    assert FormStats.of(shuffled, now=now) == FormStats.of(facts, now=now)


# --- merge is a commutative monoid -----------------------------------------------------------


@given(stats)
def test_empty_stats_are_the_identity_of_merge(a):
    assert a.merge(FormStats()) == a
    assert FormStats().merge(a) == a
    assert FormStats.of([], now=0.0) == FormStats()


@given(stats, stats, stats)
def test_merge_is_associative(a, b, c):
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(stats, stats)
def test_merge_is_commutative(a, b):
    assert a.merge(b) == b.merge(a)
    assert hash(a.merge(b)) == hash(b.merge(a))


# --- what of counts ---------------------------------------------------------------------------


@given(fact_lists, times, abandon_afters)
def test_of_counts_are_consistent(facts, now, abandon_after):
    found = FormStats.of(facts, now=now, abandon_after=abandon_after)
    in_progress = [f for f in facts if f.status == "in_progress"]

    assert found.starts == len(facts)
    assert found.completions == sum(f.status in COMPLETED for f in facts)
    assert found.completions + len(in_progress) == found.starts
    assert found.abandoned <= len(in_progress)
    assert sum(count for _, count in found.drop_off) == found.abandoned
    assert sum(count for _, count in found.durations) == found.completions
    assert all(count > 0 for _, count in (*found.durations, *found.drop_off))


@given(fact_lists, times)
def test_durations_are_whole_seconds_from_start_to_submit(facts, now):
    found = FormStats.of(facts, now=now)

    assert expanded(found.durations) == sorted(
        int(f.submitted_at - f.started_at) for f in facts if f.submitted_at is not None
    )


@given(fact_lists, times, abandon_afters)
def test_abandoned_are_those_in_progress_and_idle_for_abandon_after(facts, now, abandon_after):
    idle = [
        f
        for f in facts
        if f.status == "in_progress"
        and now - (f.started_at if f.last_active_at is None else f.last_active_at) >= abandon_after
    ]

    found = FormStats.of(facts, now=now, abandon_after=abandon_after)

    assert found.abandoned == len(idle)
    assert expanded(found.drop_off) == sorted(f.last_field or "" for f in idle)


def test_abandoned_from_exactly_abandon_after():
    fact = SubmissionFacts("in_progress", 1000.0, None, "email")

    assert FormStats.of([fact], now=2799.999).abandoned == 0
    assert FormStats.of([fact], now=2800.0).abandoned == 1
    assert FormStats.of([fact], now=1060.0, abandon_after=60).drop_off == (("email", 1),)


def test_recent_activity_keeps_a_long_submission_from_being_abandoned():
    typing = SubmissionFacts("in_progress", 0.0, None, "bio", last_active_at=3590.0)
    gone = SubmissionFacts("in_progress", 0.0, None, "bio", last_active_at=1700.0)

    assert FormStats.of([typing, gone], now=3600.0).abandoned == 1


def test_submitted_ones_are_never_abandoned_and_count_once_as_completions():
    facts = [
        SubmissionFacts(status, 0.0, 10.0, "name") for status in ("submitted", "processing")
    ] + [SubmissionFacts("completed", 0.0, 10.0, None)]

    found = FormStats.of(facts, now=10**9)

    assert (found.starts, found.completions, found.abandoned) == (3, 3, 0)
    assert found.durations == ((10, 3),)


def test_a_submit_stamped_before_its_start_takes_no_time():
    skewed = SubmissionFacts("submitted", 100.0, 99.2, "name")

    assert FormStats.of([skewed], now=100.0).durations == ((0, 1),)


def test_a_completion_without_a_submit_time_counts_but_has_no_duration():
    odd = SubmissionFacts("completed", 100.0, None, None)

    found = FormStats.of([odd], now=100.0)

    assert (found.completions, found.durations) == (1, ())
    assert found.summary()["median_seconds"] is None


# --- the canonical form -----------------------------------------------------------------------


@given(st.dictionaries(st.integers(0, 100), counts, max_size=6), st.randoms())
def test_equal_counts_make_equal_stats_however_they_are_given(mapping, random):
    pairs = list(mapping.items())
    random.shuffle(pairs)
    split = [(key, 1) for key, count in pairs for _ in range(count)]

    assert FormStats(durations=mapping) == FormStats(durations=pairs) == FormStats(durations=split)
    assert hash(FormStats(durations=mapping)) == hash(FormStats(durations=split))
    assert FormStats(durations=mapping).durations == tuple(sorted(mapping.items()))


def test_zero_counts_are_dropped():
    assert FormStats(drop_off={"name": 0}, durations=[(5, 0)]) == FormStats()


# --- summary ----------------------------------------------------------------------------------


@given(stats)
def test_summary_median_is_the_lower_median_within_the_durations(a):
    median = a.summary()["median_seconds"]
    values = expanded(a.durations)

    if not values:
        assert median is None
    else:
        assert median == values[(len(values) - 1) // 2]
        assert min(values) <= median <= max(values)


@given(fact_lists, views, times)
def test_summary_of_counted_facts_has_a_completion_rate_between_0_and_1(facts, seen, now):
    summary = FormStats.of(facts, views=seen, now=now).summary()

    assert 0.0 <= summary["completion_rate"] <= 1.0
    if facts:
        assert summary["completion_rate"] == round(summary["completions"] / len(facts), 4)
    else:
        assert summary["completion_rate"] == 0.0


@given(stats)
def test_summary_drop_off_is_sorted_by_count_then_key(a):
    drop_off = list(a.summary()["drop_off"].items())

    assert drop_off == sorted(a.drop_off, key=lambda pair: (-pair[1], pair[0]))


def test_summary_of_nothing():
    assert FormStats().summary() == {
        "views": 0,
        "starts": 0,
        "completions": 0,
        "abandoned": 0,
        "completion_rate": 0.0,
        "median_seconds": None,
        "drop_off": {},
    }


def test_summary_of_the_documented_example():
    start = 1_700_000_000.0
    done = [SubmissionFacts("submitted", start, start + s, "email") for s in (30, 60, 80, 90)]
    done += [SubmissionFacts("completed", start, start + s, None) for s in (95.5, 100, 120, 200)]
    done += [SubmissionFacts("processing", start, start + 300, "age")]
    gone = [SubmissionFacts("in_progress", start, None, key) for key in ("email", "email", None)]

    found = FormStats.of(done + gone, views=40, now=start + 3600)

    assert found.summary() == {
        "views": 40,
        "starts": 12,
        "completions": 9,
        "abandoned": 3,
        "completion_rate": 0.75,
        "median_seconds": 95,
        "drop_off": {"email": 2, "": 1},
    }


def test_lower_median_of_an_even_multiset_is_the_lower_middle():
    assert lower_median([(1, 1), (2, 1), (3, 1), (4, 1)]) == 2
    assert lower_median([(1, 2), (9, 2)]) == 1
    assert lower_median([(7, 1)]) == 7
    assert lower_median([]) is None
