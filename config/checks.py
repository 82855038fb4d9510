"""System checks of the project's own settings, run by ``manage.py check`` (``--deploy`` for
the production ones). Registered in RealtimeConfig.ready().

    python manage.py check --deploy   # config.W001 while the admin is still at /admin/
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.urls import Resolver404, resolve

DEFAULT_ADMIN_URL = "admin/"


@register(Tags.security, deploy=True)
def check_admin_url_moved(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """In production the admin must not sit where every scanner knocks first (RELIABILITY S13).
    Moving it hides nothing from a determined attacker (the lockout and staff-only sign-in do
    the real work) but takes it out of the bulk scans and their noise in the failed-login
    alerts."""
    if settings.DEBUG or settings.ADMIN_URL != DEFAULT_ADMIN_URL:
        return []
    return [
        CheckWarning(
            "The admin is at /admin/, the first place scanners try.",
            hint="Set DJANGO_ADMIN_URL to a path of your own, e.g. 'ops-7f3k2/'.",
            id="config.W001",
        )
    ]


@register(Tags.urls)
def check_admin_url_reaches_the_admin(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """A DJANGO_ADMIN_URL under another route's prefix (``staff/``, ``api/``) would leave the
    admin unreachable without a word."""
    try:
        view_name = resolve("/" + settings.ADMIN_URL).view_name
    except Resolver404:
        view_name = None
    if view_name == "admin:index":
        return []
    return [
        Error(
            f"/{settings.ADMIN_URL} does not reach the admin: another route answers there.",
            hint="Choose a DJANGO_ADMIN_URL whose first part no other route uses.",
            id="config.E001",
        )
    ]
