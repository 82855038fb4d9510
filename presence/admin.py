"""The admin's live presence page: who is connected now, read-only, from the presence store."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin
from django.http import HttpRequest

from config.admin import LivePageAdmin
from presence.models import LivePresence
from presence.services import presence_overview


@admin.register(LivePresence)
class LivePresenceAdmin(LivePageAdmin):
    # Soft state has nothing to add, change or delete: staff can only look.
    title = "Live presence"
    template = "admin/presence/live.html"

    def page_context(self, request: HttpRequest) -> dict[str, Any]:
        return {"rows": async_to_sync(presence_overview)()}
