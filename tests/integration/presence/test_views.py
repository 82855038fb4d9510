"""``GET /api/presence/users/`` and ``GET /api/presence/rooms/<room>/`` (presence/views.py).

Presence is made the real way: WebSocket connections through the ASGI application send
commands, and the REST reads then go through the Redis presence store they wrote. The REST
views are sync and reach the async services through ``async_to_sync``; an async test calls the
client through ``sync_to_async``, so those services run on the test's own event loop.
"""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from presence.services import MAX_USERS_PER_QUERY, presence_publish
from presence.state import ConnectionState
from presence.store import get_presence_store
from tests.integration.rest import error_of
from tests.integration.ws import next_of, request

USERS = "/api/presence/users/"

# WebSocket tests commit: the handshake reads the user on Channels' ORM thread. Only they pay
# for the table flush; the validation tests below run in a rolled-back transaction.
live = pytest.mark.django_db(transaction=True)


def room_url(room: str) -> str:
    return f"/api/presence/rooms/{room}/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


async def rest_get(user, url: str, params: dict | None = None):
    return await sync_to_async(client_for(user).get)(url, params or {})


async def users_of(viewer, *users) -> list[dict]:
    response = await rest_get(viewer, USERS, {"ids": ",".join(str(u.pk) for u in users)})
    assert response.status_code == 200, response.content
    return response.json()["results"]


async def members_of(viewer, room: str) -> list[dict]:
    response = await rest_get(viewer, room_url(room))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["room"] == room
    return body["members"]


async def ack(comm, type_: str, data: dict) -> dict:
    reply = await request(comm, type_, data)
    assert reply["type"] == "ack", reply
    return reply["data"]


async def join(comm, room: str, state: str = "editing") -> list[dict]:
    """Join a room; returns the members the ack listed."""
    return (await ack(comm, "presence.room.join", {"room": room, "state": state}))["members"]


# --- who may ask ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [f"{USERS}?ids=1", room_url("lobby.main")])
def test_without_credentials_the_answer_is_401_with_the_error_shape(db, url):
    response = APIClient().get(url)

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "unauthenticated",
            "message": "Authentication credentials were not provided.",
            "retry": False,
        }
    }


@pytest.mark.parametrize("url", [f"{USERS}?ids=1", room_url("lobby.main")])
def test_the_endpoints_are_read_only(api_client, url):
    error_of(api_client.post(url, {}, format="json"), 405, "method_not_allowed")


# --- /users/ input -------------------------------------------------------------------------------

TOO_MANY = ",".join(str(n) for n in range(1, MAX_USERS_PER_QUERY + 2))


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"ids": ""},
        {"ids": " "},
        {"ids": ",,,"},
        {"ids": "abc"},
        {"ids": "1,x"},
        {"ids": "-1"},
        {"ids": "1.5"},
        {"ids": "+1"},
        {"ids": "1e3"},
        {"ids": "0x10"},
        {"ids": "1;2"},
        {"ids": "\uff11"},  # a full-width digit: str.isdigit() says yes
        {"ids": "\u0661\u0662"},  # Arabic-Indic digits
        {"ids": "9" * 19},  # past a signed 64-bit integer
        {"ids": "9" * 400},
        {"ids": TOO_MANY},
        {"ids": ",".join(["1"] * (MAX_USERS_PER_QUERY + 1))},
    ],
    ids=lambda query: repr(query.get("ids", "missing"))[:24],
)
def test_ids_that_are_not_1_to_100_user_ids_are_400_invalid(api_client, query):
    error = error_of(api_client.get(USERS, query), 400, "invalid")

    assert set(error["details"]["fields"]) == {"ids"}


def test_ids_are_answered_once_each_in_the_order_asked_without_the_database(
    api_client, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = api_client.get(USERS, {"ids": " 5,3,5 , 7,,3"})

    assert response.status_code == 200
    assert [entry["user"]["id"] for entry in response.json()["results"]] == [5, 3, 7]


def test_a_hundred_ids_are_answered(api_client):
    ids = list(range(1, MAX_USERS_PER_QUERY + 1))

    response = api_client.get(USERS, {"ids": ",".join(map(str, ids))})

    assert response.status_code == 200
    assert [entry["user"]["id"] for entry in response.json()["results"]] == ids


def test_unknown_ids_read_as_offline_with_an_empty_username(api_client):
    largest = int("9" * 18)

    response = api_client.get(USERS, {"ids": f"424242,{largest}"})

    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {
                "user": {"id": user_id, "username": ""},
                "status": "offline",
                "activity": None,
                "location": None,
            }
            for user_id in (424242, largest)
        ]
    }


def test_id_zero_is_invalid(api_client):
    error_of(api_client.get(USERS, {"ids": "0"}), 400, "invalid")


# --- /rooms/<room>/ input ------------------------------------------------------------------------


def test_a_lobby_room_nobody_joined_has_no_members(api_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api_client.get(room_url("lobby.empty"))

    assert response.status_code == 200
    assert response.json() == {"room": "lobby.empty", "members": []}


@pytest.mark.parametrize("room", ["document.42", "thread.7", "forms.1", "x.1"])
def test_rooms_of_kinds_nobody_registered_are_404_not_found(api_client, room):
    error = error_of(api_client.get(room_url(room)), 404, "not_found")

    assert room not in error["message"]  # the answer says nothing of the room


@pytest.mark.parametrize(
    "room",
    [
        "lobby",
        "lobby.",
        ".main",
        "Lobby.main",
        "1obby.main",
        "lobby-x.main",
        "k" * 17 + ".main",
        "lobby.a.b",
        "lobby." + "k" * 65,
        "lobby.a%20b",
        "lobby.a%0A",
        "lobby.%C3%A9",
        "lobby.a%00",
    ],
)
def test_malformed_room_names_are_400_invalid(api_client, room):
    error_of(api_client.get(room_url(room)), 400, "invalid")


def test_the_longest_key_is_accepted(api_client):
    room = "lobby." + "K_-9" * 16

    assert api_client.get(room_url(room)).json() == {"room": room, "members": []}


def test_the_openapi_schema_describes_both_endpoints(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    users = schema["paths"][USERS]["get"]
    room = schema["paths"]["/api/presence/rooms/{room}/"]["get"]
    assert {(p["name"], p["in"], p["required"]) for p in users["parameters"]} == {
        ("ids", "query", True)
    }
    assert {(p["name"], p["in"]) for p in room["parameters"]} == {("room", "path")}
    users_out = users["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    room_out = room["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    components = schema["components"]["schemas"]
    assert set(components[users_out.rsplit("/", 1)[1]]["properties"]) == {"results"}
    assert set(components[room_out.rsplit("/", 1)[1]]["properties"]) == {"room", "members"}
    assert set(components["RoomMemberOutput"]["properties"]) == {
        "user",
        "status",
        "state",
        "activity",
        "location",
    }


# --- what the endpoints show ---------------------------------------------------------------------


@live
async def test_an_online_user_reads_as_online_with_activity_and_location(
    ws_user, ws_other_user, open_ws
):
    comm, _ = await open_ws(ws_user)
    await ack(comm, "presence.activity.set", {"activity": "editing", "location": "/docs/42"})

    assert await users_of(ws_other_user, ws_user, ws_other_user) == [
        {
            "user": {"id": ws_user.pk, "username": ws_user.username},
            "status": "online",
            "activity": "editing",
            "location": "/docs/42",
        },
        {
            "user": {"id": ws_other_user.pk, "username": ""},
            "status": "offline",
            "activity": None,
            "location": None,
        },
    ]


@live
@pytest.mark.parametrize("status", ["busy", "away"])
async def test_a_chosen_status_shows_in_both_endpoints(ws_user, ws_other_user, open_ws, status):
    comm, _ = await open_ws(ws_user)
    await join(comm, "lobby.status", "viewing")
    await ack(comm, "presence.activity.set", {"activity": "reading", "location": "/a"})

    await ack(comm, "presence.status.set", {"status": status})

    [entry] = await users_of(ws_other_user, ws_user)
    assert entry["status"] == status
    assert (entry["activity"], entry["location"]) == ("reading", "/a")
    assert await members_of(ws_other_user, "lobby.status") == [
        {
            "user": {"id": ws_user.pk, "username": ws_user.username},
            "status": status,
            "state": "viewing",
            "activity": "reading",
            "location": "/a",
        }
    ]


@live
async def test_the_room_lists_the_members_the_join_ack_listed(ws_user, ws_other_user, open_ws):
    alice, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)
    await ack(alice, "presence.activity.set", {"activity": "drawing", "location": "/board"})
    await join(alice, "lobby.ack", "editing")
    await join(bob, "lobby.elsewhere")

    acked = await join(bob, "lobby.ack", "viewing")

    assert [(m["user"]["id"], m["state"]) for m in acked] == [
        (ws_user.pk, "editing"),
        (ws_other_user.pk, "viewing"),
    ]
    assert await members_of(ws_other_user, "lobby.ack") == acked
    assert await members_of(ws_user, "lobby.ack") == acked
    assert [m["user"]["id"] for m in await members_of(ws_user, "lobby.elsewhere")] == [
        ws_other_user.pk
    ]


@live
async def test_an_invisible_user_reads_as_offline_and_in_no_room_for_others(
    ws_user, ws_other_user, open_ws
):
    alice, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)
    await ack(alice, "presence.activity.set", {"activity": "hiding", "location": "/secret"})
    await join(alice, "lobby.hide")
    await join(bob, "lobby.hide", "viewing")

    await ack(alice, "presence.status.set", {"status": "invisible"})

    assert await users_of(ws_other_user, ws_user) == [
        {
            "user": {"id": ws_user.pk, "username": ""},
            "status": "offline",
            "activity": None,
            "location": None,
        }
    ]
    members = await members_of(ws_other_user, "lobby.hide")
    assert [m["user"]["id"] for m in members] == [ws_other_user.pk]
    assert "hiding" not in str(members) and "/secret" not in str(members)


@live
async def test_an_invisible_user_still_sees_themself_in_the_room(ws_user, ws_other_user, open_ws):
    alice, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)
    await ack(alice, "presence.activity.set", {"activity": "hiding", "location": "/secret"})
    await join(alice, "lobby.mirror", "editing")
    await join(bob, "lobby.mirror", "viewing")

    await ack(alice, "presence.status.set", {"status": "invisible"})

    members = {m["user"]["id"]: m for m in await members_of(ws_user, "lobby.mirror")}
    assert set(members) == {ws_user.pk, ws_other_user.pk}
    # What others would see were the user not invisible.
    assert members[ws_user.pk] == {
        "user": {"id": ws_user.pk, "username": ws_user.username},
        "status": "online",
        "state": "editing",
        "activity": "hiding",
        "location": "/secret",
    }


@live
async def test_after_the_socket_closes_the_user_is_offline_in_both_endpoints(
    ws_user, ws_other_user, open_ws
):
    comm, _ = await open_ws(ws_user)
    await ack(comm, "presence.activity.set", {"activity": "leaving", "location": "/door"})
    await join(comm, "lobby.bye")
    assert (await users_of(ws_other_user, ws_user))[0]["status"] == "online"
    assert len(await members_of(ws_other_user, "lobby.bye")) == 1

    await comm.disconnect(timeout=5)

    assert await users_of(ws_other_user, ws_user) == [
        {
            "user": {"id": ws_user.pk, "username": ""},
            "status": "offline",
            "activity": None,
            "location": None,
        }
    ]
    assert await members_of(ws_other_user, "lobby.bye") == []


@live
async def test_a_user_stays_in_the_room_until_their_last_socket_closes(
    ws_user, ws_other_user, open_ws
):
    first, _ = await open_ws(ws_user)
    second, _ = await open_ws(ws_user)
    await join(first, "lobby.tabs")
    await join(second, "lobby.tabs")

    await first.disconnect(timeout=5)

    assert (await users_of(ws_other_user, ws_user))[0]["status"] == "online"
    assert [m["user"]["id"] for m in await members_of(ws_other_user, "lobby.tabs")] == [ws_user.pk]

    await second.disconnect(timeout=5)

    assert (await users_of(ws_other_user, ws_user))[0]["status"] == "offline"
    assert await members_of(ws_other_user, "lobby.tabs") == []


@live
async def test_a_read_reaps_a_connection_whose_worker_stopped_refreshing_it(
    ws_user, ws_other_user, open_ws
):
    # What a killed worker leaves behind: a connection saved in the store, no longer refreshed.
    now = time.time()
    ghost = ConnectionState(
        name=ws_user.username, last_input=now, rooms={"lobby.ghost": ("viewing", now)}
    )
    await get_presence_store().save_connection(ws_user.pk, "dead-worker", ghost, expires=now - 1)
    assert await presence_publish(user_id=ws_user.pk, cause="connected")
    watcher, _ = await open_ws(ws_other_user)
    watched = await ack(watcher, "presence.user.watch", {"ids": [ws_user.pk]})
    assert watched["users"][0]["status"] == "online"

    assert (await users_of(ws_other_user, ws_user))[0]["status"] == "offline"

    changed = await next_of(watcher, "presence.user.changed")
    assert changed["data"]["user"]["id"] == ws_user.pk
    assert changed["data"]["status"] == "offline"
    assert await members_of(ws_other_user, "lobby.ghost") == []
