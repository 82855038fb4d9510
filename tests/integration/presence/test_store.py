"""Where presence lives (presence/store.py): one suite, run against Redis and process memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.conf import settings

from config.realtime.kv import RedisStore
from config.redis_target import RedisTarget
from presence.state import OFFLINE, Choice, ConnectionState, PublicView, Status, public_view
from presence.store import Decide, Member, MemoryPresenceStore, RedisPresenceStore

TTL = 30.0
AWAY = 300.0

pytestmark = pytest.mark.timeout(10)


def redis_presence() -> tuple[RedisStore, RedisPresenceStore]:
    """One worker's Redis presence store, under the per-run prefix tests/conftest.py clears."""
    shared = RedisStore(RedisTarget(url=settings.REDIS_URL), settings.REALTIME_KEY_PREFIX + "kv:")
    return shared, RedisPresenceStore(shared, settings.REALTIME_KEY_PREFIX + "presence:")


@pytest.fixture(params=["redis", "memory"])
async def store(request):
    if request.param == "memory":
        yield MemoryPresenceStore()
        return
    shared, presence = redis_presence()
    yield presence
    await shared.aclient().aclose(close_connection_pool=True)


@pytest.fixture
async def redis_store():
    shared, presence = redis_presence()
    yield presence
    await shared.aclient().aclose(close_connection_pool=True)


# --- builders -----------------------------------------------------------------------------------


def connection(
    name: str = "ada", *, at: float, rooms: Iterable[str] = (), activity: str | None = None
) -> ConnectionState:
    return ConnectionState(
        name=name,
        last_input=at,
        activity=activity,
        set_at=at,
        rooms={room: ("viewing", at) for room in rooms},
    )


async def save(
    store, user_id: int, connection_id: str = "c1", *, expires: float, rooms: Iterable[str] = ()
) -> Member:
    now = time.time()
    await store.save_connection(
        user_id, connection_id, connection(f"user{user_id}", at=now, rooms=rooms), expires=expires
    )
    return user_id, connection_id


def decide_at(now: float) -> Decide:
    """What presence/services.py decides: the public view of the stored connections."""
    return lambda connections, choice: public_view(
        connections.values(), choice, now=now, away_after=AWAY
    )


def online(name: str, **rooms: str) -> PublicView:
    return PublicView(status=Status.ONLINE, rooms=rooms, name=name)


# --- connections --------------------------------------------------------------------------------


async def test_a_saved_connection_is_read_back_with_its_rooms(store):
    now = time.time()
    saved = connection(at=now, rooms=["document.1", "lobby.main"], activity="editing")

    await store.save_connection(7, "c1", saved, expires=now + TTL)

    assert await store.user(7) == ({"c1": saved}, Choice.ONLINE)


async def test_every_connection_of_a_user_is_kept(store):
    now = time.time()
    first, second = connection(at=now), connection(at=now + 1, rooms=["lobby.main"])

    await store.save_connection(7, "c1", first, expires=now + TTL)
    await store.save_connection(7, "c2", second, expires=now + TTL)

    assert await store.user(7) == ({"c1": first, "c2": second}, Choice.ONLINE)


async def test_a_user_is_online_until_their_connection_lapses(store):
    now = time.time()
    await save(store, 7, expires=now + TTL)
    await save(store, 8, expires=now - 1)  # lapsed, not yet claimed

    assert await store.online_user_ids(now=now) == {7}
    assert await store.online_user_ids(now=now + TTL + 1) == set()


async def test_a_connection_is_in_each_of_its_rooms_until_it_lapses(store):
    now = time.time()
    await save(store, 7, expires=now + TTL, rooms=["document.1", "lobby.main"])
    await save(store, 8, expires=now - 1, rooms=["document.1"])

    assert await store.room_user_ids("document.1", now=now) == {7}
    assert await store.room_user_ids("lobby.main", now=now) == {7}
    assert await store.room_user_ids("lobby.other", now=now) == set()
    assert await store.room_user_ids("document.1", now=now + TTL + 1) == set()


# --- rooms --------------------------------------------------------------------------------------


async def test_enter_room_adds_the_member(store):
    now = time.time()

    assert await store.enter_room((7, "c1"), "lobby.main", cap=2, expires=now + TTL, now=now)
    assert await store.room_user_ids("lobby.main", now=now) == {7}


async def test_a_full_room_refuses_a_new_user_and_changes_nothing(store):
    now = time.time()
    for user_id in (1, 2):
        assert await store.enter_room(
            (user_id, "c1"), "lobby.main", cap=2, expires=now + TTL, now=now
        )

    entered = await store.enter_room((3, "c1"), "lobby.main", cap=2, expires=now + TTL, now=now)

    assert entered is False
    assert await store.room_user_ids("lobby.main", now=now) == {1, 2}


async def test_a_user_already_in_a_full_room_enters_from_another_connection(store):
    now = time.time()
    for user_id in (1, 2):
        await store.enter_room((user_id, "c1"), "lobby.main", cap=2, expires=now + TTL, now=now)

    entered = await store.enter_room((1, "c2"), "lobby.main", cap=2, expires=now + TTL, now=now)

    assert entered is True
    await store.leave_room((1, "c1"), "lobby.main")
    assert await store.room_user_ids("lobby.main", now=now) == {1, 2}  # through c2


async def test_lapsed_members_do_not_count_toward_the_cap(store):
    now = time.time()
    await store.enter_room((1, "c1"), "lobby.main", cap=2, expires=now - 1, now=now - 10)
    await store.enter_room((2, "c1"), "lobby.main", cap=2, expires=now + TTL, now=now)

    entered = await store.enter_room((3, "c1"), "lobby.main", cap=2, expires=now + TTL, now=now)

    assert entered is True
    assert await store.room_user_ids("lobby.main", now=now) == {2, 3}


@pytest.mark.parametrize("cap", [None, 0])
async def test_no_cap_admits_everyone(store, cap):
    now = time.time()

    entered = [
        await store.enter_room((user_id, "c1"), "lobby.main", cap=cap, expires=now + TTL, now=now)
        for user_id in range(1, 6)
    ]

    assert entered == [True] * 5
    assert await store.room_user_ids("lobby.main", now=now) == {1, 2, 3, 4, 5}


async def test_leave_room_removes_only_that_member(store):
    now = time.time()
    for member in [(1, "c1"), (1, "c2"), (2, "c1")]:
        await store.enter_room(member, "lobby.main", cap=None, expires=now + TTL, now=now)
    await store.enter_room((1, "c1"), "lobby.other", cap=None, expires=now + TTL, now=now)

    await store.leave_room((1, "c1"), "lobby.main")

    assert await store.room_user_ids("lobby.main", now=now) == {1, 2}
    assert await store.room_user_ids("lobby.other", now=now) == {1}
    await store.leave_room((1, "c2"), "lobby.main")
    assert await store.room_user_ids("lobby.main", now=now) == {2}


# --- dropping a connection ----------------------------------------------------------------------


async def test_drop_connection_forgets_its_entry_liveness_and_rooms(store):
    now = time.time()
    await save(store, 7, "c1", expires=now + 1, rooms=["document.1", "lobby.main"])
    await save(store, 7, "c2", expires=now + 1, rooms=["lobby.main"])

    await store.drop_connection((7, "c1"))

    connections, _ = await store.user(7)
    assert set(connections) == {"c2"}
    assert await store.room_user_ids("document.1", now=now) == set()
    assert await store.room_user_ids("lobby.main", now=now) == {7}
    assert await store.online_user_ids(now=now) == {7}
    # Its liveness went too: once everything lapsed, only c2 is left to claim.
    assert await store.claim_expired(now=now + 2) == [(7, "c2")]


async def test_dropping_the_last_connection_takes_the_user_offline(store):
    now = time.time()
    member = await save(store, 7, expires=now + TTL, rooms=["lobby.main"])

    await store.drop_connection(member)

    assert await store.user(7) == ({}, Choice.ONLINE)
    assert await store.online_user_ids(now=now) == set()
    assert await store.room_user_ids("lobby.main", now=now) == set()


async def test_dropping_an_unknown_connection_changes_nothing(store):
    now = time.time()
    await save(store, 7, expires=now + TTL)

    await store.drop_connection((7, "never"))
    await store.drop_connection((8, "never"))

    assert set((await store.user(7))[0]) == {"c1"}
    assert await store.online_user_ids(now=now) == {7}


# --- refreshing ---------------------------------------------------------------------------------


async def test_refresh_keeps_members_and_their_rooms_live_past_their_old_expiry(store):
    now = time.time()
    kept = await save(store, 7, expires=now + 1, rooms=["lobby.main"])
    await save(store, 8, expires=now + 1, rooms=["lobby.main"])  # its worker stalled

    lapsed = await store.refresh([kept], {"lobby.main": [kept]}, expires=now + TTL)

    assert lapsed == []
    assert await store.online_user_ids(now=now + 10) == {7}
    assert await store.room_user_ids("lobby.main", now=now + 10) == {7}
    assert await store.claim_expired(now=now + 10) == [(8, "c1")]


async def test_refresh_returns_exactly_the_members_a_reaper_claimed(store):
    now = time.time()
    stalled = await save(store, 7, "c1", expires=now + 1)
    live = await save(store, 7, "c2", expires=now + TTL)
    other = await save(store, 8, "c1", expires=now + 1)
    assert sorted(await store.claim_expired(now=now + 2)) == [stalled, other]

    lapsed = await store.refresh([stalled, live], {}, expires=now + TTL)

    assert lapsed == [stalled]


async def test_refresh_returns_dropped_members(store):
    now = time.time()
    dropped = await save(store, 7, "c1", expires=now + TTL)
    live = await save(store, 7, "c2", expires=now + TTL)
    await store.drop_connection(dropped)

    assert await store.refresh([live, dropped], {}, expires=now + TTL) == [dropped]


async def test_refresh_of_nothing_returns_nothing(store):
    assert await store.refresh([], {}, expires=time.time() + TTL) == []


# --- claiming lapsed connections ----------------------------------------------------------------


async def test_claim_expired_returns_lapsed_members_and_drops_them(store):
    now = time.time()
    lapsed = await save(store, 7, "c1", expires=now - 1, rooms=["lobby.main"])
    await save(store, 7, "c2", expires=now + TTL)
    await save(store, 8, "c1", expires=now + TTL, rooms=["lobby.main"])

    assert await store.claim_expired(now=now) == [lapsed]

    assert set((await store.user(7))[0]) == {"c2"}
    assert await store.room_user_ids("lobby.main", now=now - 10) == {8}
    assert await store.claim_expired(now=now) == []


async def test_a_live_member_is_never_claimed(store):
    now = time.time()
    await save(store, 7, expires=now + TTL, rooms=["lobby.main"])

    assert await store.claim_expired(now=now + TTL - 1) == []
    assert await store.online_user_ids(now=now) == {7}
    assert set((await store.user(7))[0]) == {"c1"}


async def test_concurrent_claimers_take_each_lapsed_member_exactly_once(store):
    now = time.time()
    lapsed = [
        await save(store, user_id, f"c{n}", expires=now - 1, rooms=["lobby.main"])
        for user_id in range(1, 6)
        for n in range(2)
    ]
    await save(store, 9, expires=now + TTL)

    first, second = await asyncio.gather(store.claim_expired(now=now), store.claim_expired(now=now))

    assert sorted(first + second) == sorted(lapsed)
    assert await store.claim_expired(now=now) == []
    assert await store.online_user_ids(now=now) == {9}


async def test_claim_expired_takes_at_most_limit_members(store):
    now = time.time()
    lapsed = [await save(store, user_id, expires=now - 1) for user_id in range(1, 6)]

    first = await store.claim_expired(now=now, limit=2)
    rest = await store.claim_expired(now=now, limit=10)

    assert len(first) == 2
    assert sorted(first + rest) == sorted(lapsed)


# --- publishing ---------------------------------------------------------------------------------


async def test_the_first_publish_of_a_connected_user_announces_them(store):
    now = time.time()
    await save(store, 7, expires=now + TTL, rooms=["lobby.main"])

    before, after, version = await store.publish(7, decide_at(now), now=now)

    assert before == OFFLINE
    assert after == online("user7", **{"lobby.main": "viewing"})
    assert version >= int(now * 1000)


async def test_publishing_the_same_view_again_returns_none(store):
    now = time.time()
    await save(store, 7, expires=now + TTL)
    await store.publish(7, decide_at(now), now=now)

    assert await store.publish(7, decide_at(now), now=now + 1) is None


async def test_publishing_a_user_who_was_never_online_returns_none(store):
    assert await store.publish(7, decide_at(time.time()), now=time.time()) is None


async def test_a_changed_view_is_published_with_the_previous_one_as_before(store):
    now = time.time()
    member = await save(store, 7, expires=now + TTL)
    _, first, first_version = await store.publish(7, decide_at(now), now=now)

    await store.set_choice(7, Choice.BUSY)
    before, busy, busy_version = await store.publish(7, decide_at(now), now=now)
    await store.drop_connection(member)
    last_before, last, last_version = await store.publish(7, decide_at(now), now=now)

    assert before == first
    assert busy == PublicView(status=Status.BUSY, name="user7")
    assert (last_before, last) == (busy, OFFLINE)
    assert first_version < busy_version < last_version


async def test_the_publish_decision_sees_the_stored_choice(store):
    now = time.time()
    await store.set_choice(7, Choice.INVISIBLE)
    await save(store, 7, expires=now + TTL)

    # Invisible reads exactly as offline, which is what observers were already told.
    assert await store.publish(7, decide_at(now), now=now) is None


async def test_versions_strictly_increase_within_one_millisecond(store):
    now = time.time()
    await save(store, 7, expires=now + TTL)
    versions = []
    for choice in [Choice.ONLINE, Choice.BUSY, Choice.AWAY, Choice.BUSY, Choice.ONLINE]:
        await store.set_choice(7, choice)
        versions.append((await store.publish(7, decide_at(now), now=now))[2])

    assert versions == sorted(set(versions))
    assert len(versions) == 5


async def test_versions_keep_increasing_after_a_user_left_and_came_back(store):
    # Process memory forgets a user who left with nothing chosen; Redis keeps the view.
    now = time.time()
    await save(store, 7, expires=now + TTL)
    first = (await store.publish(7, decide_at(now), now=now))[2]
    await store.drop_connection((7, "c1"))
    gone = (await store.publish(7, decide_at(now), now=now))[2]
    later = now + 1
    await save(store, 7, expires=later + TTL)
    back = await store.publish(7, decide_at(later), now=later)

    assert back is not None and back[0] == OFFLINE
    assert back[2] > gone > first


async def test_redis_versions_keep_increasing_after_the_stored_view_is_gone(redis_store):
    store = redis_store
    now = time.time()
    await save(store, 7, expires=now + TTL)
    versions = []
    for choice in [Choice.ONLINE, Choice.BUSY, Choice.AWAY]:
        await store.set_choice(7, choice)
        versions.append((await store.publish(7, decide_at(now), now=now))[2])

    with redis.Redis.from_url(settings.REDIS_URL) as client:
        assert client.delete(f"{store.prefix}view:7") == 1
    later = now + 1  # the view outlives the user by USER_KEEP_SECONDS: it is gone only later
    before, after, version = await store.publish(7, decide_at(later), now=later)

    assert (before, after.status) == (OFFLINE, Status.AWAY)
    assert version > versions[-1] > versions[0]


async def test_concurrent_publishes_of_one_transition_announce_it_once(store):
    # Every worker that hears of a change publishes; observers must get one broadcast.
    now = time.time()
    await save(store, 7, expires=now + TTL, rooms=["lobby.main"])

    results = await asyncio.gather(*(store.publish(7, decide_at(now), now=now) for _ in range(20)))

    published = [result for result in results if result is not None]
    assert len(published) == 1
    before, after, _ = published[0]
    assert (before, after) == (OFFLINE, online("user7", **{"lobby.main": "viewing"}))
    assert await store.views([7]) == {7: after}


# --- choice and views ---------------------------------------------------------------------------


async def test_the_choice_of_an_unknown_user_is_online(store):
    assert await store.user(7) == ({}, Choice.ONLINE)


async def test_set_choice_is_read_back_with_the_connections(store):
    now = time.time()
    saved = connection(at=now)
    await store.save_connection(7, "c1", saved, expires=now + TTL)

    await store.set_choice(7, Choice.INVISIBLE)

    assert await store.user(7) == ({"c1": saved}, Choice.INVISIBLE)


async def test_the_choice_outlives_the_connections(store):
    now = time.time()
    await store.set_choice(7, Choice.BUSY)
    member = await save(store, 7, expires=now + TTL)

    await store.drop_connection(member)

    assert await store.user(7) == ({}, Choice.BUSY)


async def test_views_of_unknown_users_read_as_offline(store):
    assert await store.views([7, 8]) == {7: OFFLINE, 8: OFFLINE}
    assert await store.views([]) == {}


async def test_views_return_the_published_views(store):
    now = time.time()
    await save(store, 7, expires=now + TTL)
    _, after, _ = await store.publish(7, decide_at(now), now=now)

    assert await store.views(iter([7, 8])) == {7: after, 8: OFFLINE}


# --- Redis specifics: several workers on one store ----------------------------------------------


def in_another_worker(work) -> None:
    """Run ``work(store)`` to completion on another worker's store, in its own event loop."""

    async def run() -> None:
        shared, other = redis_presence()
        try:
            await work(other)
        finally:
            await shared.aclient().aclose(close_connection_pool=True)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=5)


async def test_redis_publish_decides_again_when_another_worker_published_meanwhile(redis_store):
    store = redis_store
    now = time.time()
    await save(store, 7, "c1", expires=now + TTL)
    other_tab = connection("user7", at=now + 1, rooms=["lobby.main"], activity="editing")
    seen: list[set[str]] = []

    async def open_other_tab(other: RedisPresenceStore) -> None:
        # What a worker does when a tab opens: write, then publish.
        await other.save_connection(7, "c2", other_tab, expires=now + TTL)
        assert await other.publish(7, decide_at(now), now=now) is not None

    def decide(connections, choice):
        seen.append(set(connections))
        if len(seen) == 1:  # another worker opens a second tab and publishes while we decide
            in_another_worker(open_other_tab)
        return decide_at(now)(connections, choice)

    published = await store.publish(7, decide, now=now)

    # Our swap from the version we read fails; deciding again on fresh data finds the view the
    # other worker published already: nothing more to announce.
    assert seen == [{"c1"}, {"c1", "c2"}]
    assert published is None
    assert (await store.views([7]))[7] == PublicView(
        status=Status.ONLINE, activity="editing", rooms={"lobby.main": "viewing"}, name="user7"
    )


async def test_redis_a_member_refreshed_while_being_claimed_is_not_claimed(
    redis_store, monkeypatch
):
    store = redis_store
    now = time.time()
    member = await save(store, 7, expires=now - 1, rooms=["lobby.main"])
    remove = store._remove

    async def refreshed_first(claimed: Member, mode: str, now: float = 0.0) -> bool:
        # The worker holding the socket comes back from a stall between the reaper's read and
        # its drop, and refreshes: the connection is live again and is told so.
        assert await store.refresh([member], {"lobby.main": [member]}, expires=now + TTL) == []
        return await remove(claimed, mode, now)

    monkeypatch.setattr(store, "_remove", refreshed_first)

    claimed = await store.claim_expired(now=now)

    assert claimed == []
    assert set((await store.user(7))[0]) == {"c1"}
    assert await store.online_user_ids(now=now) == {7}


async def test_save_and_publish_is_save_then_publish(store):
    now = time.time()
    tab = connection("user7", at=now, rooms=["lobby.main"])

    first = await store.save_and_publish(
        7, "c1", tab, expires=now + TTL, decide=decide_at(now), now=now
    )
    again = await store.save_and_publish(
        7, "c1", tab, expires=now + TTL, decide=decide_at(now), now=now
    )

    assert first is not None and first[0] == OFFLINE
    assert first[1].rooms == {"lobby.main": "viewing"}
    assert again is None
    assert set((await store.user(7))[0]) == {"c1"}


async def test_room_views_are_the_published_views_of_live_members(store):
    now = time.time()
    for user_id, expires in ((7, now + TTL), (8, now + TTL), (9, now - 1)):
        tab = connection(f"user{user_id}", at=now, rooms=["lobby.main"])
        await store.save_and_publish(
            user_id, "c1", tab, expires=expires, decide=decide_at(now), now=now
        )
    await store.save_connection(7, "c2", connection("user7", at=now), expires=now + TTL)

    views = await store.room_views("lobby.main", now=now)

    assert sorted(views) == [7, 8]  # 9 lapsed; 7 counted once for two tabs
    assert views[7].rooms == {"lobby.main": "viewing"}
    assert await store.room_views("lobby.empty", now=now) == {}
