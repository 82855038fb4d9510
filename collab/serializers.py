"""REST shapes of documents, members, operations and versions: the fields WebSocket events carry.

Input serializers only check shape and range; who may do what is the services' and selectors'
business, so a stranger is told 404 whatever the body says once the body is well formed.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from collab.models import Role
from collab.services import MAX_TITLE
from config.rest import StrictCharField, StrictIntegerField, UserRefOutputSerializer

MAX_OPERATIONS_PAGE = 1000


# --- output --------------------------------------------------------------------------------------


class DocumentOutputSerializer(serializers.Serializer):
    """A document as its members list it; ``role`` is the caller's."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    owner = UserRefOutputSerializer()
    version = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Role.choices)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DocumentDetailOutputSerializer(DocumentOutputSerializer):
    content = serializers.CharField()


class DocumentMemberOutputSerializer(serializers.Serializer):
    user = UserRefOutputSerializer()
    role = serializers.ChoiceField(choices=Role.choices)


class OperationOutputSerializer(serializers.Serializer):
    """One committed op, as ``collab.op.applied`` carries it."""

    op = serializers.JSONField(help_text='e.g. [3, "hi", -2]: retain, insert, delete')
    version = serializers.IntegerField()
    client_id = serializers.CharField()
    seq = serializers.IntegerField()
    author = UserRefOutputSerializer(allow_null=True)


class OperationRangeOutputSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The document's current version.")
    to = serializers.IntegerField(help_text="The last version this page reaches.")
    more = serializers.BooleanField(help_text="Whether ops up to the asked `to` remain.")
    results = OperationOutputSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``from`` is a Python keyword, so it cannot be declared as a class attribute.
        return {"from": serializers.IntegerField(), **super().get_fields()}


class DocumentVersionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    name = serializers.CharField(help_text="Empty for the periodic snapshots.")
    created_by = UserRefOutputSerializer(allow_null=True)
    created_at = serializers.DateTimeField()


class VersionContentOutputSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    content = serializers.CharField()


class VersionRestoreOutputSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The version the restoring op produced.")


# --- input ---------------------------------------------------------------------------------------


class DocumentInputSerializer(serializers.Serializer):
    title = StrictCharField(max_length=MAX_TITLE)
    content = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, default="")


class DocumentUpdateInputSerializer(serializers.Serializer):
    title = StrictCharField(max_length=MAX_TITLE)


class DocumentMemberInputSerializer(serializers.Serializer):
    user_id = StrictIntegerField(min_value=1)
    role = serializers.ChoiceField(choices=Role.choices)

    def validate_user_id(self, value: int) -> int:
        # member_set would otherwise fail on the foreign key at commit, as a 500.
        if not get_user_model().objects.filter(pk=value).exists():
            raise serializers.ValidationError("No such user.")
        return value


class OperationRangeQuerySerializer(serializers.Serializer):
    """``from`` and ``to`` of an ops page; give ``context={"current": document}``. ``to`` is
    filled in with, and held to, the document's current version."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``from`` is a Python keyword, so it cannot be declared as a class attribute.
        return {
            "from": StrictIntegerField(
                required=False, default=0, help_text="Ops after this version (default 0)."
            ),
            "to": StrictIntegerField(
                required=False,
                help_text="Ops up to this version (default: the current one). "
                f"A page holds at most {MAX_OPERATIONS_PAGE} ops; `more` says if one follows.",
            ),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        current = self.context["current"].version
        asked = attrs.get("to")
        if attrs["from"] > current:
            raise serializers.ValidationError(
                {"from": f"This document has versions 0 to {current}."}
            )
        if asked is not None and attrs["from"] > asked:
            raise serializers.ValidationError({"from": "Must not be greater than 'to'."})
        return {"from": attrs["from"], "to": current if asked is None else min(asked, current)}


class DocumentVersionInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=MAX_TITLE)
