"""The admin's monitoring pages: the event log (read-only), the real-time app switches,
announcements, and the live connections page with its "disconnect a user" form.

Every change goes through monitoring.controls, as over REST: it is audited and reaches every
worker.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.utils import timezone

from config.admin import LivePageAdmin, ReadOnlyAdminMixin
from monitoring import controls
from monitoring.events import client_ip
from monitoring.models import Announcement, AppSwitch, LiveConnections, SystemEvent


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


@admin.register(AppSwitch)
class AppSwitchAdmin(admin.ModelAdmin):
    list_display = ["app", "enabled", "reason", "changed_by", "changed_at"]
    list_select_related = ["changed_by"]
    fields = ["app", "enabled", "reason", "changed_by", "changed_at"]
    readonly_fields = ["app", "changed_by", "changed_at"]
    actions = ["switch_off", "switch_on"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AppSwitch]:
        # A flushed table (tests) or a new app: every switch is listed all the same.
        for switch in controls.app_switches():
            if switch.pk is None:
                AppSwitch.objects.get_or_create(app=switch.app)
        return super().get_queryset(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one row per app, made by the migration

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AppSwitch, form: Any, change: bool) -> None:
        controls.app_switch_set(
            app=obj.app,
            enabled=obj.enabled,
            reason=obj.reason,
            by=request.user,
            ip=client_ip(request),
        )

    def _switch(self, request: HttpRequest, queryset: QuerySet[AppSwitch], enabled: bool) -> None:
        for switch in queryset:
            controls.app_switch_set(
                app=switch.app,
                enabled=enabled,
                reason="",
                by=request.user,
                ip=client_ip(request),
            )
        state = "on" if enabled else "off"
        self.message_user(request, f"Switched {queryset.count()} app(s) {state} on every worker.")

    @admin.action(
        description="Switch real-time off (close and refuse sockets)", permissions=["change"]
    )
    def switch_off(self, request: HttpRequest, queryset: QuerySet[AppSwitch]) -> None:
        self._switch(request, queryset, enabled=False)

    @admin.action(description="Switch real-time on", permissions=["change"])
    def switch_on(self, request: HttpRequest, queryset: QuerySet[AppSwitch]) -> None:
        self._switch(request, queryset, enabled=True)


class AnnouncementForm(forms.ModelForm):
    class Meta:
        model = Announcement
        fields = ["text", "level", "expires_at"]

    def clean_expires_at(self) -> Any:
        expires_at = self.cleaned_data["expires_at"]
        if expires_at <= timezone.now():
            raise forms.ValidationError("An announcement must expire in the future.")
        return expires_at


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    form = AnnouncementForm
    list_display = ["id", "text", "level", "created_by", "created_at", "expires_at", "live"]
    list_filter = ["level", "created_at"]
    list_select_related = ["created_by", "withdrawn_by"]
    search_fields = ["text"]
    actions = ["withdraw"]

    @admin.display(boolean=True)
    def live(self, obj: Announcement) -> bool:
        return obj.is_live()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["text", "level", "expires_at"]
        return [
            "text",
            "level",
            "created_by",
            "created_at",
            "expires_at",
            "withdrawn_at",
            "withdrawn_by",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Sent as it was to every socket: changing it afterwards would leave clients with the
        # old text. Withdraw it and announce again instead.
        return self.get_fields(request, obj) if obj is not None else []

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"expires_at": timezone.now() + timedelta(hours=1)}

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an audit trail: withdraw instead

    def save_model(self, request: HttpRequest, obj: Announcement, form: Any, change: bool) -> None:
        if change:
            return  # every field is read-only once sent
        created = controls.announcement_create(
            text=obj.text,
            level=obj.level,
            expires_at=obj.expires_at,
            by=request.user,
            ip=client_ip(request),
        )
        obj.pk = created.pk

    @admin.action(description="Withdraw from every socket", permissions=["change"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Announcement]) -> None:
        for announcement in queryset:
            controls.announcement_withdraw(
                announcement_id=announcement.pk, by=request.user, ip=client_ip(request)
            )
        self.message_user(request, f"Withdrew {queryset.count()} announcement(s).")


@admin.register(LiveConnections)
class LiveConnectionsAdmin(LivePageAdmin):
    """Sockets per app and worker; with monitoring.disconnect_user, a form to disconnect a user."""

    title = "Live connections"
    template = "admin/monitoring/connections.html"

    def _may_disconnect(self, request: HttpRequest) -> bool:
        return request.user.has_perm("monitoring.disconnect_user")

    def page_context(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "overview": controls.connections_overview(),
            "may_disconnect": self._may_disconnect(request),
        }

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):  # type: ignore[override]
        if request.method == "POST" and self.has_view_permission(request):
            return self._disconnect(request)
        return super().changelist_view(request, extra_context)

    def _disconnect(self, request: HttpRequest) -> HttpResponseRedirect:
        if not self._may_disconnect(request):
            raise PermissionDenied
        username = request.POST.get("username", "").strip()
        user = get_user_model().objects.filter(username=username).first() if username else None
        if user is None:
            self.message_user(request, f"No user named {username!r}.", level=messages.ERROR)
        else:
            controls.user_disconnect(user_id=user.pk, by=request.user, ip=client_ip(request))
            self.message_user(request, f"Disconnected every socket of {username} (4401).")
        return HttpResponseRedirect(request.path)
