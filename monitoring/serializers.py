"""REST input and output of system events and staff controls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from config.rest import StrictCharField, StrictIntegerField, UserRefOutputSerializer
from monitoring.controls import MAX_REASON, MAX_TEXT
from monitoring.models import AnnouncementLevel, EventKind, RealtimeApp, Severity


class ChoiceListField(serializers.CharField):
    """``"a,b"`` as ``["a", "b"]``, each one of ``choices``."""

    def __init__(self, *, choices: list[str], **kwargs: Any) -> None:
        self.choices = choices
        kwargs.setdefault("help_text", f"Comma-separated, any of: {', '.join(choices)}.")
        super().__init__(max_length=500, **kwargs)

    def to_internal_value(self, data: Any) -> list[str]:  # type: ignore[override]
        items = [item.strip() for item in super().to_internal_value(data).split(",")]
        unknown = sorted({item for item in items if item not in self.choices})
        if unknown:
            raise serializers.ValidationError(f"Unknown: {', '.join(unknown)}.")
        return items


class EventQuerySerializer(serializers.Serializer):
    kind = ChoiceListField(choices=EventKind.values, required=False)
    severity = ChoiceListField(choices=Severity.values, required=False)
    since = StrictIntegerField(required=False, help_text="Only events with a larger id.")


class EventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    # Plain strings: other apps' enums are also named "kind" in the schema.
    kind = serializers.CharField(help_text=f"One of: {', '.join(EventKind.values)}.")
    severity = serializers.CharField(help_text=f"One of: {', '.join(Severity.values)}.")
    actor = UserRefOutputSerializer(allow_null=True)
    ip = serializers.IPAddressField(allow_null=True)
    details = serializers.JSONField()
    created_at = serializers.DateTimeField()


# --- staff controls ----------------------------------------------------------------------------
class StrictBooleanField(serializers.BooleanField):
    """true or false only: DRF's BooleanField also takes "yes", "0", 1 and the like."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class AppSwitchInputSerializer(serializers.Serializer):
    enabled = StrictBooleanField()
    reason = StrictCharField(max_length=MAX_REASON, required=False, allow_blank=True, default="")


class AppSwitchOutputSerializer(serializers.Serializer):
    app = serializers.CharField(help_text=f"One of: {', '.join(RealtimeApp.values)}.")
    enabled = serializers.BooleanField()
    reason = serializers.CharField()
    changed_by = UserRefOutputSerializer(allow_null=True)
    changed_at = serializers.DateTimeField(allow_null=True)


MAX_EXPIRES_IN = 30 * 24 * 3600


class AnnouncementInputSerializer(serializers.Serializer):
    text = StrictCharField(max_length=MAX_TEXT)
    level = serializers.ChoiceField(choices=AnnouncementLevel.values, default="info")
    expires_in = StrictIntegerField(
        min_value=10,
        max_value=MAX_EXPIRES_IN,
        required=False,
        help_text="Seconds from now (default 3600); or give expires_at.",
    )
    expires_at = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "expires_in" in attrs and "expires_at" in attrs:
            raise serializers.ValidationError("Give expires_in or expires_at, not both.")
        if "expires_at" not in attrs:
            seconds = attrs.pop("expires_in", 3600)
            attrs["expires_at"] = timezone.now() + timedelta(seconds=seconds)
        return attrs


class AnnouncementQuerySerializer(serializers.Serializer):
    live = serializers.BooleanField(required=False, help_text="Staff: only the live ones.")


class AnnouncementOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    level = serializers.CharField(help_text=f"One of: {', '.join(AnnouncementLevel.values)}.")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    live = serializers.BooleanField(source="is_live")


class AnnouncementStaffOutputSerializer(AnnouncementOutputSerializer):
    created_by = UserRefOutputSerializer(allow_null=True)
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    withdrawn_by = UserRefOutputSerializer(allow_null=True)


class WorkerReportSerializer(serializers.Serializer):
    worker = serializers.CharField(help_text="host:pid")
    host = serializers.CharField()
    pid = serializers.IntegerField()
    apps = serializers.DictField(child=serializers.IntegerField())
    total = serializers.IntegerField()
    started_at = serializers.FloatField(help_text="Unix time")
    reported_at = serializers.FloatField(help_text="Unix time")


class ConnectionsOutputSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    apps = serializers.DictField(child=serializers.IntegerField())
    workers = WorkerReportSerializer(many=True)


class DisconnectOutputSerializer(serializers.Serializer):
    user = UserRefOutputSerializer()
