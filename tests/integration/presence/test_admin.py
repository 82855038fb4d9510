"""The admin's live presence page (presence/admin.py): read-only, for staff who may view it.

Who is connected is made the real way, by WebSocket connections through the ASGI application;
the admin is then read with Django's test client, through ``sync_to_async`` from async tests.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.test import Client

from tests.factories import UserFactory
from tests.integration.ws import request

PAGE = "/admin/presence/livepresence/"

# WebSocket tests commit: the handshake reads the user on Channels' ORM thread.
live = pytest.mark.django_db(transaction=True)


def staff_client(*, superuser: bool = False, may_view: bool = False) -> Client:
    staff = UserFactory(is_staff=True, is_superuser=superuser)
    if may_view:
        staff.user_permissions.add(
            Permission.objects.get(content_type__app_label="presence", codename="view_livepresence")
        )
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def superuser_client(db) -> Client:
    return staff_client(superuser=True)


@pytest.fixture
def viewer_client(db) -> Client:
    """Staff with only the permission to view live presence."""
    return staff_client(may_view=True)


def rows(html: str) -> list[list[str]]:
    """The cells of each row of the page's table."""
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    assert body, html
    return [
        [cell.strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body[1], re.S)
    ]


async def page_rows(client: Client) -> list[list[str]]:
    response = await sync_to_async(client.get)(PAGE)
    assert response.status_code == 200
    return rows(response.content.decode())


async def ack(comm, type_: str, data: dict) -> dict:
    reply = await request(comm, type_, data)
    assert reply["type"] == "ack", reply
    return reply["data"]


# --- who may look --------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(db):
    response = Client().get(PAGE)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={PAGE}"


def test_users_who_are_not_staff_are_sent_to_the_login_page(db):
    client = Client()
    client.force_login(UserFactory())

    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={PAGE}"


def test_staff_without_the_view_permission_are_forbidden(db):
    assert staff_client().get(PAGE).status_code == 403


def test_staff_with_the_view_permission_see_the_page(viewer_client):
    response = viewer_client.get(PAGE)

    assert response.status_code == 200
    assert rows(response.content.decode()) == [["Nobody is connected."]]


# --- read-only: the list is the only URL; add, change, history and delete do not exist ---------

REFUSED = (403, 404)


def test_adding_is_refused_and_never_offered(superuser_client):
    assert superuser_client.get(f"{PAGE}add/").status_code in REFUSED
    assert superuser_client.post(f"{PAGE}add/", {"username": "mallory"}).status_code in REFUSED
    for page in (PAGE, "/admin/", "/admin/presence/"):
        assert f"{PAGE}add/" not in superuser_client.get(page).content.decode()


def test_deleting_is_refused(superuser_client, user):
    assert superuser_client.get(f"{PAGE}{user.pk}/delete/").status_code in REFUSED
    delete = superuser_client.post(f"{PAGE}{user.pk}/delete/", {"post": "yes"})
    assert delete.status_code in REFUSED
    assert type(user).objects.filter(pk=user.pk).exists()


def test_changing_is_refused(superuser_client, user):
    response = superuser_client.post(f"{PAGE}{user.pk}/change/", {"username": "renamed"})

    assert response.status_code in REFUSED
    user.refresh_from_db()
    assert user.username != "renamed"


@pytest.mark.parametrize("suffix", ["change/", "history/", ""])
def test_no_url_shows_a_users_record(viewer_client, user, suffix):
    response = viewer_client.get(f"{PAGE}{user.pk}/{suffix}")

    assert user.password not in response.content.decode()
    assert response.status_code in REFUSED


# --- what it shows -------------------------------------------------------------------------------


@live
async def test_the_page_lists_each_connected_user_with_status_and_rooms(
    ws_user, ws_other_user, open_ws, superuser_client
):
    comm, _ = await open_ws(ws_user)
    await open_ws(ws_user)
    await ack(comm, "presence.room.join", {"room": "lobby.admin", "state": "editing"})
    await ack(comm, "presence.room.join", {"room": "lobby.side", "state": "viewing"})
    await ack(comm, "presence.activity.set", {"activity": "reviewing", "location": "/docs/7"})
    await ack(comm, "presence.status.set", {"status": "busy"})

    [row] = await page_rows(superuser_client)

    assert row[:7] == [
        f"{ws_user.username} (#{ws_user.pk})",
        "busy",
        "busy",
        "2",
        "lobby.admin (editing), lobby.side (viewing)",
        "reviewing",
        "/docs/7",
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[7])


@live
async def test_invisible_users_are_listed_with_what_others_see_and_what_they_chose(
    ws_user, ws_other_user, open_ws, superuser_client
):
    alice, _ = await open_ws(ws_user)
    await open_ws(ws_other_user)
    await ack(alice, "presence.room.join", {"room": "lobby.hide", "state": "viewing"})

    await ack(alice, "presence.status.set", {"status": "invisible"})

    listed = {row[0]: row for row in await page_rows(superuser_client)}
    assert listed.keys() == {
        f"{ws_user.username} (#{ws_user.pk})",
        f"{ws_other_user.username} (#{ws_other_user.pk})",
    }
    alice_row = listed[f"{ws_user.username} (#{ws_user.pk})"]
    assert alice_row[1:5] == ["offline", "invisible", "1", "lobby.hide (viewing)"]
    assert listed[f"{ws_other_user.username} (#{ws_other_user.pk})"][1:5] == [
        "online",
        "online",
        "1",
        "-",
    ]


@live
async def test_a_user_whose_socket_closed_leaves_the_page(
    ws_user, ws_other_user, open_ws, superuser_client
):
    alice, _ = await open_ws(ws_user)
    await open_ws(ws_other_user)
    assert len(await page_rows(superuser_client)) == 2

    await alice.disconnect(timeout=5)

    assert [row[0] for row in await page_rows(superuser_client)] == [
        f"{ws_other_user.username} (#{ws_other_user.pk})"
    ]
