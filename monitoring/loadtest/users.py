"""Load-test users and their WebSocket tickets.

The command shares the workers' database and Redis, so it creates its users directly (one per
client, because rate limits are per user) and mints tickets with ``ticket_issue``:

    user_ids = load_user_ids(2000)               # load-00001 ... load-02000, created once
    tickets = mint_tickets(user_ids, ttl=120)    # one single-use ticket per user

Load users are ordinary active users named ``load-NNNNN`` with an unusable password: nobody
can sign in as them; only a ticket minted here lets a client connect as one.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test.utils import override_settings

from config.realtime.tickets import ticket_issue

USERNAME_FORMAT = "load-{:05d}"
BATCH = 1000


def load_user_ids(count: int) -> list[int]:
    """Ids of load users 1..count, creating those that are missing."""
    user_model = get_user_model()
    names = [USERNAME_FORMAT.format(n) for n in range(1, count + 1)]
    existing = dict(user_model.objects.filter(username__in=names).values_list("username", "pk"))
    missing = [name for name in names if name not in existing]
    if missing:
        # make_password(None) is an unusable password: no hashing cost, no way to sign in.
        user_model.objects.bulk_create(
            [user_model(username=name, password=make_password(None)) for name in missing],
            batch_size=BATCH,
            ignore_conflicts=True,  # a concurrent run may create the same names
        )
        existing = dict(user_model.objects.filter(username__in=names).values_list("username", "pk"))
    return [existing[name] for name in names]


def mint_tickets(user_ids: list[int], *, ttl: int) -> list[str]:
    """One ticket per user, valid for ``ttl`` seconds: long enough for a paced connect phase
    (the default 30 s would expire before 2,000 clients at 50/s are all connected)."""
    with override_settings(REALTIME_TICKET_TTL_SECONDS=ttl):
        return [ticket_issue(user_id=user_id) for user_id in user_ids]
