"""The admin's live presence page: who is connected now, read-only, from the presence store."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path

from config.admin import ReadOnlyAdminMixin
from presence.models import LivePresence
from presence.services import presence_overview


@admin.register(LivePresence)
class LivePresenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Soft state has nothing to add, change or delete: staff can only look.
    def get_urls(self):  # type: ignore[no-untyped-def]
        # Only the live list: the change, history and delete views of this proxy would show
        # user records (password hashes included) to anyone allowed to view presence.
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="presence_livepresence_changelist",
            )
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):  # type: ignore[override]
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Live presence",
            "rows": async_to_sync(presence_overview)(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/presence/live.html", context)
