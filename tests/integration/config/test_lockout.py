"""Sign-in lockout (django-axes, config/lockout.py; RELIABILITY.md S13 and S9 a): after
LOGIN_FAILURE_LIMIT wrong passwords for one name, or from one address, every login form refuses
that name (or address) with 429 until the cool-off passes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 10  # LOGIN_FAILURE_LIMIT's default
COOL_OFF = 15 * 60  # LOGIN_LOCKOUT_MINUTES's default, in seconds


def sign_in(username: str, password: str, *, ip: str, path: str = "/accounts/login/", **extra):
    form = {"username": username, "password": password}
    return Client().post(path, form, REMOTE_ADDR=ip, **extra)


def test_the_tenth_wrong_password_for_a_name_locks_it_out_from_any_address():
    user = UserFactory()

    answers = [
        sign_in(user.username, f"wrong-{n}", ip=f"198.51.100.{n + 1}").status_code
        for n in range(LIMIT)
    ]
    right = sign_in(user.username, PASSWORD, ip="203.0.113.50")
    other = sign_in(UserFactory().username, PASSWORD, ip="203.0.113.50")

    assert answers == [200] * (LIMIT - 1) + [429]
    assert right.status_code == 429  # the right password does not get past the lock
    assert "_auth_user_id" not in right.client.session
    assert right["Retry-After"] == str(COOL_OFF)
    assert b"Sign-in locked" in right.content
    assert other.status_code == 302  # another name, from the same address: not locked


def test_ten_wrong_passwords_from_one_address_lock_it_out_over_any_name():
    answers = [sign_in(f"guess-{n}", "wrong", ip="198.51.100.77").status_code for n in range(LIMIT)]
    user = UserFactory()

    from_there = sign_in(user.username, PASSWORD, ip="198.51.100.77")
    from_elsewhere = sign_in(user.username, PASSWORD, ip="198.51.100.78")

    assert answers == [200] * (LIMIT - 1) + [429]
    assert from_there.status_code == 429
    assert from_elsewhere.status_code == 302


def test_the_admin_login_is_locked_by_the_same_count():
    staff = UserFactory(is_staff=True)
    for n in range(LIMIT - 1):
        sign_in(staff.username, f"wrong-{n}", ip="198.51.100.5")  # through the site's form

    tenth = sign_in(staff.username, "wrong", ip="198.51.100.6", path="/admin/login/")
    right = sign_in(staff.username, PASSWORD, ip="198.51.100.7", path="/admin/login/")

    assert (tenth.status_code, right.status_code) == (429, 429)


def test_a_client_asking_for_json_gets_the_error_envelope():
    user = UserFactory()
    for n in range(LIMIT):
        sign_in(user.username, f"wrong-{n}", ip="198.51.100.9")

    refused = sign_in(user.username, PASSWORD, ip="198.51.100.9", HTTP_ACCEPT="application/json")

    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "code": "rate_limited",
            "message": "Too many failed sign-ins for this name or from this address: "
            "try again later.",
            "retry": True,
            "retry_after": COOL_OFF,
        }
    }


def test_the_lock_lifts_once_the_cool_off_has_passed():
    user = UserFactory()
    for n in range(LIMIT):
        sign_in(user.username, f"wrong-{n}", ip="198.51.100.10")
    assert sign_in(user.username, PASSWORD, ip="198.51.100.10").status_code == 429

    # Every try while locked starts the wait again, so the last one is what counts.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=COOL_OFF + 1))

    assert sign_in(user.username, PASSWORD, ip="198.51.100.10").status_code == 302
