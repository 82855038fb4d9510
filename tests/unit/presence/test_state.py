"""Status, public view, change detection and stored forms of presence (presence/state.py)."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence import state
from presence.state import (
    OFFLINE,
    Changes,
    Choice,
    ConnectionState,
    PublicView,
    Status,
    changes,
    dump_connection,
    dump_view,
    load_connection,
    load_view,
    needs_input_write,
    next_version,
    public_view,
    room_states,
    status_of,
    turned_idle,
)

# --- strategies ------------------------------------------------------------------------------

# Epoch-like seconds; finite, so subtraction and int(now * 1000) stay meaningful.
times = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)
# A few values shared by many draws, so ties between connections actually happen.
tied_times = st.one_of(st.sampled_from([0.0, 1.0, 2.0]), times)
away_afters = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)
# Small pools rather than arbitrary text: the properties only compare strings, pools make rooms,
# states and activities collide between connections, and they keep generation fast. Arbitrary
# text is exercised where it matters, by the JSON round trips.
words = ["", "editing", "viewing", "idle", "/docs/42", "\u00e9t\u00e9", "\u270d\ufe0f"]
optional_texts = st.none() | st.sampled_from(words)
names = st.sampled_from(["ada", "grace", "", "\u00c5sa"])
room_names = st.sampled_from(["lobby.main", "lobby.side", "document.42", "a", "b"])
room_state_names = st.sampled_from(words)
connection_rooms = st.dictionaries(room_names, st.tuples(room_state_names, tied_times), max_size=3)

connections = st.builds(
    ConnectionState,
    name=names,
    last_input=tied_times,
    activity=optional_texts,
    location=optional_texts,
    set_at=tied_times,
    rooms=connection_rooms,
)
connection_lists = st.lists(connections, max_size=5)
# status_of reads nothing but last_input, room_states nothing but rooms.
bare_connections = st.builds(ConnectionState, name=st.just("ada"), last_input=tied_times)
room_connection_lists = st.lists(
    st.builds(
        ConnectionState, name=st.just("ada"), last_input=st.just(0.0), rooms=connection_rooms
    ),
    max_size=5,
)
# public_view picks activity/location by (set_at, last_input), ties broken on what is shown; the
# "latest" property compares against (set_at, last_input) alone, so it draws lists without ties.
distinct_latest_lists = st.lists(
    connections, max_size=5, unique_by=lambda c: (c.set_at, c.last_input)
)

views = st.builds(
    PublicView,
    status=st.sampled_from(Status),
    activity=optional_texts,
    location=optional_texts,
    rooms=st.dictionaries(room_names, room_state_names, max_size=3),
    name=names,
)


def pairs(connection_list):
    """Each room's winning (since, state), computed independently of the module under test."""
    newest: dict[str, tuple[float, str]] = {}
    for connection in connection_list:
        for room, (room_state, since) in connection.rooms.items():
            newest[room] = max(newest.get(room, (since, room_state)), (since, room_state))
    return newest


def summary(connection_list):
    """One connection standing for a whole part: its rooms are the part's winners."""
    rooms = {
        room: (room_state, since) for room, (since, room_state) in pairs(connection_list).items()
    }
    return ConnectionState(name="part", last_input=0.0, rooms=rooms)


def visible_difference(before, after):
    return before.user_fields() != after.user_fields() or dict(before.rooms) != dict(after.rooms)


# --- status_of -------------------------------------------------------------------------------


@given(st.sampled_from(Choice), times, away_afters)
def test_status_of_no_connections_is_offline_whatever_the_choice(choice, now, away_after):
    assert status_of([], choice, now=now, away_after=away_after) is Status.OFFLINE


@given(st.lists(bare_connections, max_size=5), times, away_afters)
def test_status_of_invisible_is_always_offline(live, now, away_after):
    assert status_of(live, Choice.INVISIBLE, now=now, away_after=away_after) is Status.OFFLINE


@given(
    st.lists(bare_connections, min_size=1, max_size=5),
    st.sampled_from([(Choice.BUSY, Status.BUSY), (Choice.AWAY, Status.AWAY)]),
    times,
    away_afters,
)
def test_status_of_busy_and_away_are_shown_as_chosen_while_connected(
    live, choice_and_status, now, away_after
):
    choice, expected = choice_and_status

    assert status_of(live, choice, now=now, away_after=away_after) is expected


@given(st.lists(bare_connections, min_size=1, max_size=5), times, away_afters)
def test_status_of_online_choice_is_online_iff_some_input_is_recent(live, now, away_after):
    recent = [c for c in live if now - c.last_input < away_after]

    status = status_of(live, Choice.ONLINE, now=now, away_after=away_after)

    assert status is (Status.ONLINE if recent else Status.AWAY)


def test_status_of_input_exactly_away_after_ago_is_away():
    live = [ConnectionState(name="ada", last_input=100.0)]

    assert status_of(live, Choice.ONLINE, now=160.0, away_after=60.0) is Status.AWAY
    assert status_of(live, Choice.ONLINE, now=159.999, away_after=60.0) is Status.ONLINE


# --- public_view -----------------------------------------------------------------------------


@given(connection_lists, st.sampled_from(Choice), times, away_afters)
def test_public_view_offline_or_invisible_leaks_nothing(live, choice, now, away_after):
    view = public_view(live, choice, now=now, away_after=away_after)

    if view.status is Status.OFFLINE:
        assert view == OFFLINE
        assert (view.activity, view.location, dict(view.rooms), view.name) == (None, None, {}, "")
    if choice is Choice.INVISIBLE or not live:
        assert view == OFFLINE


@given(
    distinct_latest_lists.filter(bool),
    st.sampled_from([Choice.ONLINE, Choice.AWAY, Choice.BUSY]),
    times,
    away_afters,
)
def test_public_view_shows_rooms_and_the_latest_activity(live, choice, now, away_after):
    view = public_view(live, choice, now=now, away_after=away_after)

    latest = max(live, key=lambda c: (c.set_at, c.last_input))
    assert view.status is status_of(live, choice, now=now, away_after=away_after)
    assert view.rooms == room_states(live)
    assert (view.activity, view.location, view.name) == (
        latest.activity,
        latest.location,
        latest.name,
    )


@given(connection_lists, st.sampled_from(Choice), times, away_afters, st.data())
def test_public_view_does_not_depend_on_connection_order(live, choice, now, away_after, data):
    shuffled = data.draw(st.permutations(live))

    assert public_view(shuffled, choice, now=now, away_after=away_after) == public_view(
        live, choice, now=now, away_after=away_after
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # As Hypothesis shrank it, when ties were broken by list order (a regression case).
        (
            ConnectionState(name="ada", last_input=0.0, location=""),
            ConnectionState(name="ada", last_input=0.0, location=None),
        ),
        (
            ConnectionState(name="ada", last_input=5.0, activity="editing", set_at=5.0),
            ConnectionState(name="ada", last_input=5.0, activity="viewing", set_at=5.0),
        ),
    ],
)
def test_public_view_with_tied_connections_does_not_depend_on_their_order(first, second):
    assert public_view([first, second], Choice.ONLINE, now=0.0, away_after=60.0) == public_view(
        [second, first], Choice.ONLINE, now=0.0, away_after=60.0
    )


def test_public_view_of_the_documented_example():
    live = [
        load_connection(
            '{"input": 1700000000.5, "activity": "editing", "location": "/docs/42",'
            ' "set_at": 1700000000.1, "rooms": {"document.42": ["editing", 1700000000.4]},'
            ' "name": "ada"}'
        ),
        ConnectionState(name="ada", last_input=1699999000.0, activity="viewing", set_at=1.0),
    ]

    view = public_view(live, Choice.ONLINE, now=1700000010.0, away_after=60.0)

    assert view == PublicView(
        status=Status.ONLINE,
        activity="editing",
        location="/docs/42",
        rooms={"document.42": "editing"},
        name="ada",
    )


def test_public_view_invisible_in_a_room_is_exactly_offline():
    live = [
        ConnectionState(
            name="ada",
            last_input=100.0,
            activity="editing",
            location="/docs/42",
            set_at=100.0,
            rooms={"document.42": ("editing", 100.0)},
        )
    ]

    assert public_view(live, Choice.INVISIBLE, now=101.0, away_after=60.0) is OFFLINE


# --- room_states: aggregation of parts = aggregation of the whole ----------------------------


@given(room_connection_lists, st.data())
def test_room_states_of_the_whole_equals_merging_the_parts(live, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(live)), max_size=3)))
    bounds = [0, *cuts, len(live)]
    parts = [live[a:b] for a, b in pairwise(bounds)]

    whole = room_states(live)

    assert whole == room_states([summary(part) for part in parts])
    assert whole == {room: room_state for room, (_, room_state) in sorted(pairs(live).items())}


@given(room_connection_lists, st.data())
def test_room_states_does_not_depend_on_connection_order(live, data):
    assert room_states(data.draw(st.permutations(live))) == room_states(live)


@given(room_connection_lists)
def test_room_states_lists_every_joined_room_once_in_sorted_order(live):
    rooms = list(room_states(live))

    assert rooms == sorted({room for c in live for room in c.rooms})


def test_room_states_latest_since_wins_and_ties_go_to_the_greater_state():
    early = ConnectionState(name="ada", last_input=0.0, rooms={"lobby.main": ("viewing", 5.0)})
    late = ConnectionState(name="ada", last_input=0.0, rooms={"lobby.main": ("idle", 6.0)})
    tied = ConnectionState(name="ada", last_input=0.0, rooms={"lobby.main": ("editing", 6.0)})

    assert room_states([late, early]) == {"lobby.main": "idle"}
    assert room_states([tied, late]) == room_states([late, tied]) == {"lobby.main": "idle"}


# --- changes -------------------------------------------------------------------------------


@given(views)
def test_changes_of_a_view_to_itself_is_nothing(view):
    assert not changes(view, view)
    assert changes(view, view) == Changes()


@given(views, st.integers(0, 2**53))
def test_changes_of_a_view_to_its_stored_copy_is_nothing(view, version):
    stored, _ = load_view(dump_view(view, version))

    assert not changes(stored, view)
    assert not changes(view, stored)


@given(views, views)
def test_changes_is_truthy_iff_user_fields_or_rooms_differ(before, after):
    assert bool(changes(before, after)) == visible_difference(before, after)


@given(views, names)
def test_changes_of_a_name_alone_is_nothing(view, name):
    assert not changes(view, replace(view, name=name))


@given(views, views)
def test_changes_user_changed_iff_user_fields_differ(before, after):
    assert changes(before, after).user_changed == (before.user_fields() != after.user_fields())


@given(views, views)
def test_changes_partition_the_rooms(before, after):
    found = changes(before, after)
    old, new = dict(before.rooms), dict(after.rooms)
    joined, updated, left = set(found.joined), set(found.updated), set(found.left)

    assert joined == new.keys() - old.keys()
    assert left == old.keys() - new.keys()
    assert updated == {r for r in new.keys() & old.keys() if new[r] != old[r]}
    assert not (joined & updated or joined & left or updated & left)
    unchanged = {r: old[r] for r in old.keys() - left - updated}
    assert unchanged | {r: new[r] for r in joined | updated} == new
    for field in (found.joined, found.updated, found.left):
        assert list(field) == sorted(set(field))


@given(views, views)
def test_changes_rooms_is_the_sorted_union(before, after):
    found = changes(before, after)

    assert found.rooms == tuple(sorted({*found.joined, *found.updated, *found.left}))
    assert len(set(found.rooms)) == len(found.rooms)


def test_changes_going_offline_leaves_every_room():
    before = PublicView(
        status=Status.ONLINE, rooms={"lobby.main": "viewing", "document.42": "editing"}
    )

    assert changes(before, OFFLINE) == Changes(
        user_changed=True, left=("document.42", "lobby.main")
    )


# --- a user's life, event by event ----------------------------------------------------------

USER = "ada"
# Time passes in twelfths of away_after (a multiple of 12), so every time stays an exact integer
# and the thresholds at away_after and away_after / 10 are crossed often.
life_away_afters = st.integers(1, 10).map(lambda k: 12.0 * k)
starts = st.integers(0, 2_000_000_000).map(float)
ticks = st.integers(0, 24)
events = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), ticks),
        st.tuples(st.just("input"), st.integers(0, 5)),
        st.tuples(st.just("tick"), ticks),
        st.tuples(st.just("input"), st.integers(0, 5)),
        st.tuples(st.just("connect")),
        st.tuples(st.just("disconnect"), st.integers(0, 5)),
        st.tuples(st.just("choice"), st.sampled_from(Choice)),
        st.tuples(st.just("activity"), st.integers(0, 5), optional_texts, optional_texts),
        st.tuples(st.just("join"), st.integers(0, 5), room_names, room_state_names),
        st.tuples(st.just("leave"), st.integers(0, 5), room_names),
    ),
    max_size=30,
).map(lambda history: [("connect",), *history])  # a life without a connection says nothing


class Life:
    """The connections of one user as the tracking code keeps them: input is written through
    only when ``needs_input_write`` says so; the store holds JSON."""

    def __init__(self, now, away_after):
        self.now, self.away_after = now, away_after
        self.stored: list[str] = []  # dump_connection of each live connection
        self.real_input: list[float] = []  # the user's actual last input per connection
        self.choice = Choice.ONLINE

    def live(self):
        return [load_connection(text) for text in self.stored]

    def view(self):
        return public_view(self.live(), self.choice, now=self.now, away_after=self.away_after)

    def edit(self, index, **fields):
        self.stored[index] = dump_connection(replace(self.live()[index], **fields))

    def apply(self, event):
        kind, *args = event
        if kind == "tick":
            self.now += args[0] * self.away_after / 12
        elif kind == "connect":
            self.stored.append(dump_connection(ConnectionState(name=USER, last_input=self.now)))
            self.real_input.append(self.now)
        elif kind == "choice":
            self.choice = args[0]
        elif self.stored:
            self.apply_to_connection(kind, args[0] % len(self.stored), *args[1:])

    def apply_to_connection(self, kind, index, *args):
        connection = self.live()[index]
        if kind == "input":
            self.real_input[index] = self.now
            if needs_input_write(connection.last_input, self.now, self.away_after):
                self.edit(index, last_input=self.now)
        elif kind == "disconnect":
            del self.stored[index], self.real_input[index]
        elif kind == "activity":
            self.real_input[index] = self.now
            self.edit(
                index, activity=args[0], location=args[1], set_at=self.now, last_input=self.now
            )
        elif kind == "join":
            self.edit(index, rooms={**connection.rooms, args[0]: (args[1], float(self.now))})
        elif kind == "leave":
            self.edit(index, rooms={r: p for r, p in connection.rooms.items() if r != args[0]})


@given(events, starts, life_away_afters)
def test_a_life_broadcasts_once_per_visible_transition_and_never_otherwise(
    history, start, away_after
):
    life = Life(start, away_after)
    published, version = load_view(None)
    broadcasts = transitions = 0

    for event in history:
        life.apply(event)
        after = life.view()
        transitions += visible_difference(published, after)
        broadcasts += bool(changes(published, after))
        version = next_version(version, life.now)
        published, _ = load_view(dump_view(after, version))
        # A heartbeat: nothing happened, the same view is decided and published again.
        assert not changes(published, life.view())

    assert broadcasts == transitions


@given(events, starts, life_away_afters)
def test_a_life_shows_input_at_once_and_away_at_most_a_tenth_early(history, start, away_after):
    life = Life(start, away_after)

    for event in history:
        life.apply(event)
        view = life.view()
        if life.choice is not Choice.ONLINE or not life.stored:
            continue
        if event[0] in ("input", "activity"):
            assert view.status is Status.ONLINE
        if view.status is Status.AWAY:
            assert all(life.now - real >= 0.9 * away_after for real in life.real_input)


@given(events, starts, life_away_afters, ticks, st.booleans())
def test_a_life_turning_away_by_time_alone_is_seen_by_the_idle_check(
    history, start, away_after, wait, to_the_threshold
):
    life = Life(start, away_after)
    for event in history:
        life.apply(event)
    before_view, before = life.view(), life.now
    threshold = max((c.last_input for c in life.live()), default=before) + away_after

    if to_the_threshold and threshold > before:
        life.now = threshold  # the very moment the latest input turns idle
    else:
        life.apply(("tick", wait))

    if changes(before_view, life.view()):
        assert any(
            turned_idle(c.last_input, before=before, now=life.now, away_after=away_after)
            for c in life.live()
        )


# --- needs_input_write and turned_idle -----------------------------------------------------


@given(times, st.floats(min_value=0, max_value=1e7), away_afters)
def test_needs_input_write_once_the_stored_input_is_a_tenth_of_away_after_old(
    stored, age, away_after
):
    now = stored + age

    assert needs_input_write(stored, now, away_after) == (now - stored >= away_after / 10)


@given(st.lists(times, min_size=1, max_size=6), st.floats(0, 1e7), away_afters)
def test_needs_input_write_always_writes_the_first_input_of_a_user_shown_away(
    stored, later, away_after
):
    live = [ConnectionState(name=USER, last_input=t) for t in stored]
    now = max(stored) + later

    if status_of(live, Choice.ONLINE, now=now, away_after=away_after) is Status.AWAY:
        assert all(needs_input_write(c.last_input, now, away_after) for c in live)


@given(
    st.floats(0, 1e9),
    st.lists(st.floats(0, 2), min_size=1, max_size=10),
    st.floats(0, 2),
    st.floats(1, 600),
)
def test_needs_input_write_shows_a_user_away_at_most_a_tenth_early(start, gaps, wait, away_after):
    stored = real = start
    for gap in gaps:
        real += gap * away_after
        if needs_input_write(stored, real, away_after):
            stored = real
    now = real + wait * away_after
    live = [ConnectionState(name=USER, last_input=stored)]

    if status_of(live, Choice.ONLINE, now=now, away_after=away_after) is Status.AWAY:
        assert now - real >= 0.9 * away_after * (1 - 1e-9)


@given(times, st.floats(0, 1e7), away_afters)
def test_needs_input_write_skipping_a_write_never_hides_input(stored, age, away_after):
    now = stored + age
    live = [ConnectionState(name=USER, last_input=stored)]

    if not needs_input_write(stored, now, away_after):
        assert status_of(live, Choice.ONLINE, now=now, away_after=away_after) is Status.ONLINE


def test_needs_input_write_examples():
    assert not needs_input_write(100.0, 105.9, 60.0)
    assert needs_input_write(100.0, 106.0, 60.0)
    assert needs_input_write(100.0, 1000.0, 60.0)


@given(times, st.lists(st.floats(0, 1e6), min_size=2, max_size=10), away_afters)
def test_turned_idle_is_true_for_exactly_the_one_interval_that_crosses(
    last_input, offsets, away_after
):
    checks = sorted(last_input + offset for offset in offsets)

    crossings = [
        turned_idle(last_input, before=a, now=b, away_after=away_after) for a, b in pairwise(checks)
    ]

    crossed = checks[0] - last_input < away_after <= checks[-1] - last_input
    assert sum(crossings) == (1 if crossed else 0)


def test_turned_idle_examples():
    assert turned_idle(100.0, before=159.0, now=160.0, away_after=60.0)
    assert not turned_idle(100.0, before=160.0, now=161.0, away_after=60.0)
    assert not turned_idle(100.0, before=150.0, now=159.0, away_after=60.0)


# --- stored JSON forms ---------------------------------------------------------------------

json_floats = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(max_size=8)
json_connections = st.builds(
    ConnectionState,
    name=texts,
    last_input=json_floats,
    activity=st.none() | texts,
    location=st.none() | texts,
    set_at=json_floats,
    rooms=st.dictionaries(texts, st.tuples(texts, json_floats), max_size=3),
)
json_views = st.builds(
    PublicView,
    status=st.sampled_from(Status),
    activity=st.none() | texts,
    location=st.none() | texts,
    rooms=st.dictionaries(texts, texts, max_size=3),
    name=texts,
)


@given(json_connections)
def test_load_connection_reads_back_what_dump_connection_wrote(connection):
    assert load_connection(dump_connection(connection)) == connection


@given(json_views, st.integers(0, 2**63))
def test_load_view_reads_back_what_dump_view_wrote(view, version):
    loaded, loaded_version = load_view(dump_view(view, version))

    assert (loaded, loaded_version) == (view, version)
    assert type(loaded.status) is Status


def test_load_view_of_nothing_is_offline_at_version_zero():
    assert load_view(None) == (OFFLINE, 0)
    assert load_view(None)[0] is state.OFFLINE


def test_dump_connection_unicode_round_trip():
    connection = ConnectionState(
        name="Ada Lovelace \u00e9\U0001f600",
        last_input=0.1 + 0.2,
        activity="\u00e9dite",
        rooms={"lobby.main": ("\u270d", 1e-300)},
    )

    assert load_connection(dump_connection(connection)) == connection


# --- next_version --------------------------------------------------------------------------


@given(st.integers(0, 2**62), times)
def test_next_version_grows_and_keeps_up_with_the_clock(previous, now):
    version = next_version(previous, now)

    assert version > previous
    assert version >= int(now * 1000)


@given(st.lists(times, max_size=20))
def test_next_version_only_grows_even_when_the_clock_goes_back(clock):
    versions = [0]
    for now in clock:
        versions.append(next_version(versions[-1], now))

    assert versions == sorted(set(versions))
