"""Presence keeps no tables: live presence is soft state in the presence store (DESIGN 5, 7).

``LivePresence`` is a proxy of the user model so the admin has a page, and staff a permission
(``presence.view_livepresence``), for the read-only live view.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model


class LivePresence(get_user_model()):  # type: ignore[misc]
    class Meta:
        proxy = True
        verbose_name = "live presence"
        verbose_name_plural = "live presence"
