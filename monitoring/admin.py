"""The admin's event log: read-only (only the application writes events; prune_events deletes)."""

from __future__ import annotations

from django.contrib import admin

from config.admin import ReadOnlyAdminMixin
from monitoring.models import SystemEvent


@admin.register(SystemEvent)
class SystemEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "created_at", "kind", "severity", "actor", "ip"]
    list_filter = ["kind", "severity", "created_at"]
    search_fields = ["ip", "actor__username", "details__username"]
    list_select_related = ["actor"]
    date_hierarchy = "created_at"
    fields = ["kind", "severity", "actor", "ip", "details", "created_at"]
    # The user list would cost a query per row in the page; the link is enough.
    raw_id_fields = ["actor"]
    show_full_result_count = False  # COUNT(*) on a large log on every page view
