"""REST input and output of system events."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.rest import StrictIntegerField, UserRefOutputSerializer
from monitoring.models import EventKind, Severity


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
