"""Admin pieces shared by the apps."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path


class ReadOnlyAdminMixin:
    """For records only the application writes (committed ops, live presence): look, never
    add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ViewOnlyInline(admin.TabularInline):
    """Rows shown under their parent's page, never added, changed or deleted there."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class LivePageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """One read-only page of live state on a proxy model that keeps no table (live presence,
    live connections): its changelist URL only, for staff with the model's view permission.

        @admin.register(LivePresence)
        class LivePresenceAdmin(LivePageAdmin):
            title, template = "Live presence", "admin/presence/live.html"
            def page_context(self, request): return {"rows": ...}
    """

    title: str = ""
    template: str = ""

    def page_context(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def get_urls(self):  # type: ignore[no-untyped-def]
        # Only the page: the change, history and delete views of a user proxy would show user
        # records (password hashes included) to anyone allowed to view the page.
        meta = self.model._meta
        name = f"{meta.app_label}_{meta.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):  # type: ignore[override]
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": self.title,
            **self.page_context(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.template, context)
