"""REST shapes of forms, members, fields, changes, conflicts, submissions and analytics.

Output serializers only describe, for the OpenAPI schema, the payload dicts of
``forms_live.selectors`` that every reply carries, WebSocket and REST alike; the views never build
a body through them (a test holds their fields to the payloads' keys). Input serializers only
check shape; what a value may be and who may use it is the services' business (``services.checks``
and ``validation``), so a bad label is ``invalid`` and a stranger gets 404 whichever way the
request comes.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from config.realtime.resume import MAX_REPLAY
from config.rest import StrictCharField, StrictIntegerField, UserRefOutputSerializer
from forms_live.models import ConflictPolicy, ConflictStatus, FieldType, Role, SubmissionStatus

MAX_CHANGES_PAGE = MAX_REPLAY  # the WebSocket's replay cap

# Three models have a ``status`` (forms, conflicts, submissions), each with its own set: as enums
# under one name drf-spectacular would warn, so they are described in words.
FORM_STATUSES = "draft, published or closed"
CONFLICT_STATUSES = "open or resolved"
SUBMISSION_STATUSES = "in_progress, submitted, processing or completed"


def _text(**kwargs: Any) -> StrictCharField:
    """Text kept as sent (no trimming): the services judge emptiness and length."""
    return StrictCharField(allow_blank=True, trim_whitespace=False, **kwargs)


def _key_field(**kwargs: Any) -> StrictCharField:
    return _text(help_text="The idempotency key: sending it again returns the original.", **kwargs)


# --- output --------------------------------------------------------------------------------------


class FieldOutputSerializer(serializers.Serializer):
    """``selectors.field_payload``."""

    key = serializers.CharField(help_text="Stable: submissions' values are keyed by it.")
    type = serializers.ChoiceField(choices=FieldType.choices)
    label = serializers.CharField()
    help = serializers.CharField()
    required = serializers.BooleanField()
    rules = serializers.JSONField(help_text='Validation rules by type, e.g. {"max_length": 80}.')
    options = serializers.ListField(child=serializers.CharField(), help_text="Choice types.")
    position = serializers.IntegerField()


class FormOutputSerializer(serializers.Serializer):
    """``selectors.form_payload`` without fields, with the caller's ``role``."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField(help_text=f"One of: {FORM_STATUSES}.")
    conflict_policy = serializers.ChoiceField(choices=ConflictPolicy.choices)
    anonymous = serializers.BooleanField(help_text="Respondents are not named, only tokens.")
    revision = serializers.IntegerField(help_text="The latest change: base your changes on it.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    role = serializers.ChoiceField(choices=Role.choices, help_text="The caller's.")


class FormDetailOutputSerializer(FormOutputSerializer):
    fields = FieldOutputSerializer(many=True, help_text="In order.")


class FormMemberOutputSerializer(serializers.Serializer):
    """A ``FormMember`` (model instances)."""

    user = UserRefOutputSerializer()
    role = serializers.ChoiceField(choices=Role.choices)


class ChangeOutputSerializer(serializers.Serializer):
    """A builder change's ``ChangeResult``: what the builders' socket got, and how it went."""

    data = serializers.JSONField(help_text="The event's data, as the builders' socket got it.")
    revision = serializers.IntegerField(
        allow_null=True, help_text="The change's revision; null when nothing changed."
    )
    outcome = serializers.CharField(
        help_text="applied, merged, unchanged, conflict (manual policy: a conflict is open) or "
        "resolved."
    )
    duplicate = serializers.BooleanField(help_text="The key had been used: this is the original.")


class FieldListOutputSerializer(serializers.Serializer):
    revision = serializers.IntegerField(help_text="The form revision these fields are at.")
    results = FieldOutputSerializer(many=True)


class FormChangeOutputSerializer(serializers.Serializer):
    """A ``FormChange`` row, as resume replays it."""

    revision = serializers.IntegerField()
    type = serializers.CharField(help_text="The wire type, e.g. forms.field.changed.")
    data = serializers.JSONField(help_text="As the builders' socket got it.")
    author = UserRefOutputSerializer(allow_null=True)
    created_at = serializers.DateTimeField()


class FormChangeRangeOutputSerializer(serializers.Serializer):
    to = serializers.IntegerField(help_text="The last revision this page reaches.")
    revision = serializers.IntegerField(help_text="The form's latest revision.")
    more = serializers.BooleanField(help_text="Whether changes after `to` remain.")
    results = FormChangeOutputSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``from`` is a Python keyword, so it cannot be declared as a class attribute.
        return {"from": serializers.IntegerField(), **super().get_fields()}


class ConflictOutputSerializer(serializers.Serializer):
    """``selectors.conflict_payload``."""

    id = serializers.IntegerField()
    field = serializers.CharField(help_text="The field's key.")
    prop = serializers.CharField(help_text="The field property both builders changed.")
    base_revision = serializers.IntegerField()
    current_value = serializers.JSONField(help_text="Kept when the conflict opened.")
    current_by = UserRefOutputSerializer(allow_null=True)
    proposed_value = serializers.JSONField()
    proposed_by = UserRefOutputSerializer(allow_null=True)
    status = serializers.CharField(help_text=f"One of: {CONFLICT_STATUSES}.")
    resolution = serializers.CharField(help_text="current, proposed, custom; empty while open.")
    resolved_value = serializers.JSONField(allow_null=True)
    resolved_by = UserRefOutputSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)


class DeviceOutputSerializer(serializers.Serializer):
    browser = serializers.CharField()
    os = serializers.CharField()
    type = serializers.CharField(help_text="desktop, mobile, tablet, bot or other.")


class SubmissionOutputSerializer(serializers.Serializer):
    """``selectors.submission_payload``: on an anonymous form nobody is named."""

    id = serializers.IntegerField()
    form_id = serializers.IntegerField()
    respondent = UserRefOutputSerializer(allow_null=True)
    status = serializers.CharField(help_text=f"One of: {SUBMISSION_STATUSES}.")
    values = serializers.JSONField(help_text="Field key -> value.")
    errors = serializers.JSONField(help_text="Field key -> validation codes.")
    progress = serializers.IntegerField(help_text="Percent.")
    last_field = serializers.CharField()
    revision = serializers.IntegerField()
    device = DeviceOutputSerializer()
    started_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class SubmissionChangeOutputSerializer(serializers.Serializer):
    submission = SubmissionOutputSerializer()
    revision = serializers.IntegerField(help_text="The submission's revision.")
    duplicate = serializers.BooleanField(help_text="It had that status already.")


class AnalyticsOutputSerializer(serializers.Serializer):
    """``analytics.FormStats.summary``."""

    views = serializers.IntegerField(help_text="Fill pages opened.")
    starts = serializers.IntegerField()
    completions = serializers.IntegerField(help_text="Submitted, processing or completed.")
    abandoned = serializers.IntegerField(help_text="In progress and idle for 30 minutes.")
    completion_rate = serializers.FloatField(help_text="completions / starts; 0 without starts.")
    median_seconds = serializers.IntegerField(
        allow_null=True, help_text="From start to submit; null before any completion."
    )
    drop_off = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='The last field abandoned respondents touched -> how many ("" for none).',
    )


# --- input ---------------------------------------------------------------------------------------


class FormInputSerializer(serializers.Serializer):
    title = _text()
    conflict_policy = serializers.ChoiceField(
        choices=ConflictPolicy.choices, required=False, default=ConflictPolicy.MERGE
    )
    # Not a BooleanField, which also takes "yes", 1 and "on": form_create wants true or false.
    anonymous = serializers.JSONField(required=False, default=False, help_text="true or false.")


class ChangeInputSerializer(serializers.Serializer):
    """What every builder change carries: the revision it was made at, and its key."""

    base_revision = StrictIntegerField(help_text="The form revision the change was made at.")
    client_msg_id = _key_field()


class PropChangeInputSerializer(ChangeInputSerializer):
    prop = _text(help_text="The property to change.")
    value = serializers.JSONField(help_text="Its new value.")


class FormChangeInputSerializer(PropChangeInputSerializer):
    prop = _text(
        help_text="title (editors and owners); status, conflict_policy or anonymous (owners)."
    )


class FieldChangeInputSerializer(PropChangeInputSerializer):
    prop = _text(help_text="type, label, help, required, rules or options.")


class FieldInputSerializer(ChangeInputSerializer):
    key = _text(help_text="1 to 64 of [a-z0-9_], starting with a letter; unique in the form.")
    type = serializers.ChoiceField(choices=FieldType.choices)
    label = _text()
    help = _text(required=False, default="")
    required = serializers.JSONField(required=False, default=False, help_text="true or false.")
    rules = serializers.JSONField(required=False, default=None, help_text="An object.")
    options = serializers.JSONField(required=False, default=None, help_text="A list of strings.")
    position = StrictIntegerField(required=False, default=None, help_text="Default: the end.")


class FieldMoveInputSerializer(ChangeInputSerializer):
    position = StrictIntegerField(help_text="0 is the first.")


class FieldRemoveQuerySerializer(ChangeInputSerializer):
    """Query parameters, not a body: DELETE bodies are dropped by some clients and proxies."""


class FormMemberInputSerializer(serializers.Serializer):
    user_id = StrictIntegerField(min_value=1)
    role = serializers.ChoiceField(choices=Role.choices)

    def validate_user_id(self, value: int) -> int:
        if not get_user_model().objects.filter(pk=value).exists():
            raise serializers.ValidationError("No such user.")
        return value


class FormChangeQuerySerializer(serializers.Serializer):
    since = StrictIntegerField(
        required=False,
        default=0,
        help_text=f"Changes after this revision (default 0). A page holds at most "
        f"{MAX_CHANGES_PAGE}; `more` says if one follows.",
    )


class ConflictQuerySerializer(serializers.Serializer):
    status = StrictCharField(
        required=False, default=None, help_text=f"{CONFLICT_STATUSES}. Default: both."
    )

    def validate_status(self, value: str | None) -> str | None:
        # Called with the default too.
        if value is not None and value not in ConflictStatus.values:
            raise serializers.ValidationError(f"Must be {CONFLICT_STATUSES}.")
        return value


class ConflictResolveInputSerializer(serializers.Serializer):
    resolution = _text(help_text="current, proposed or custom.")
    value = serializers.JSONField(required=False, default=None, help_text="For custom.")
    client_msg_id = _key_field()


class SubmissionQuerySerializer(serializers.Serializer):
    status = StrictCharField(
        required=False, default=None, help_text=f"{SUBMISSION_STATUSES}. Default: all."
    )

    def validate_status(self, value: str | None) -> str | None:
        # Called with the default too.
        if value is not None and value not in SubmissionStatus.values:
            raise serializers.ValidationError(f"Must be {SUBMISSION_STATUSES}.")
        return value


class SubmissionStatusInputSerializer(serializers.Serializer):
    status = _text(help_text="processing or completed.")
