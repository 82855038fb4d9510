"""Django's auth signals as system events: logins, logouts and failed logins.

Connected in MonitoringConfig.ready(); any login path (admin, session API, tests' Client.login
with a request) reports here.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from monitoring.events import client_ip, record
from monitoring.models import EventKind, Severity

MAX_USERNAME_CHARS = 150  # what was typed is stored, so bounded


def on_logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    record(EventKind.LOGIN, Severity.INFO, actor=user, ip=client_ip(request))


def on_logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    record(EventKind.LOGOUT, Severity.INFO, actor=user, ip=client_ip(request))


def on_login_failed(
    sender: Any, credentials: dict[str, Any] | None = None, request: Any = None, **kwargs: Any
) -> None:
    # Django has already masked the password in credentials; only the name tried is kept.
    username = (credentials or {}).get(get_user_model().USERNAME_FIELD)
    details = {"username": str(username)[:MAX_USERNAME_CHARS]} if username else {}
    record(EventKind.LOGIN_FAILED, Severity.WARNING, ip=client_ip(request), details=details)


def connect() -> None:
    user_logged_in.connect(on_logged_in, dispatch_uid="monitoring.login")
    user_logged_out.connect(on_logged_out, dispatch_uid="monitoring.logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="monitoring.login_failed")
