"""REST shapes of threads, comments, reactions and notifications.

Output serializers only describe, for the OpenAPI schema, the payload dicts of
``comments.selectors`` that every reply carries, WebSocket and REST alike; the views never build
a body through them (a test holds their fields to the payloads' keys). Input serializers only
check shape; what a value may be and who may use it is the services' business, so a too long
body is ``too_large`` and a stranger gets 404 whichever way the request comes.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from comments.models import NotificationKind, ReactionKind, TargetKind
from config.rest import StrictCharField, StrictIntegerField, UserRefOutputSerializer

MAX_EVENTS_PAGE = 1000  # the WebSocket's replay cap (selectors.MAX_REPLAY)
MAX_READ_IDS = 1000  # notifications marked read at once (services.notifications_mark_read)


def _text(**kwargs: Any) -> StrictCharField:
    """Text kept as sent (no trimming): the services judge emptiness and length."""
    return StrictCharField(allow_blank=True, trim_whitespace=False, **kwargs)


# --- output --------------------------------------------------------------------------------------


# Choice sets appear as enums only under one field name each (``target_kind``, reaction
# ``kind``): drf-spectacular warns when one name carries two sets or one set two names.


class TargetOutputSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text=f"One of: {', '.join(TargetKind.values)}.")
    id = serializers.IntegerField()
    key = serializers.CharField(help_text="A form field's key; empty for other targets.")


class AnchorOutputSerializer(serializers.Serializer):
    start = serializers.IntegerField(help_text="First code point of the range.")
    end = serializers.IntegerField(help_text="Code point after the range.")
    version = serializers.IntegerField(help_text="The document version the range refers to.")


class ThreadOutputSerializer(serializers.Serializer):
    """``selectors.thread_payload``."""

    id = serializers.IntegerField()
    target = TargetOutputSerializer()
    anchor = AnchorOutputSerializer(allow_null=True)
    created_by = UserRefOutputSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    resolved = serializers.BooleanField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = UserRefOutputSerializer(allow_null=True)
    seq = serializers.IntegerField(help_text="The thread's latest event: resume from it.")


class ThreadListOutputSerializer(ThreadOutputSerializer):
    comment_count = serializers.IntegerField(help_text="Comments not deleted.")


class AttachmentOutputSerializer(serializers.Serializer):
    """``selectors.attachment_payload``."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField(help_text="Read from the file's bytes.")
    url = serializers.CharField(help_text="Download it here, with the thread's permissions.")


class ReactionSummaryOutputSerializer(serializers.Serializer):
    """One entry of ``selectors.reaction_summary``."""

    kind = serializers.ChoiceField(choices=ReactionKind.choices)
    count = serializers.IntegerField()
    users = serializers.ListField(child=serializers.IntegerField(), help_text="User ids.")


class CommentOutputSerializer(serializers.Serializer):
    """``selectors.comment_payload``: a deleted or hidden comment keeps its place, not its text."""

    id = serializers.IntegerField()
    thread_id = serializers.IntegerField()
    parent_id = serializers.IntegerField(allow_null=True)
    author = UserRefOutputSerializer(allow_null=True)
    body = serializers.CharField()
    code = serializers.CharField()
    code_language = serializers.CharField()
    mentions = UserRefOutputSerializer(many=True)
    attachments = AttachmentOutputSerializer(many=True)
    reactions = ReactionSummaryOutputSerializer(many=True)
    client_msg_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    deleted = serializers.BooleanField()
    hidden = serializers.BooleanField()


class ThreadCreateOutputSerializer(serializers.Serializer):
    thread = ThreadOutputSerializer()
    comment = CommentOutputSerializer()
    seq = serializers.IntegerField(allow_null=True, help_text="The event the comment made.")
    duplicate = serializers.BooleanField(help_text="The key had been used: this is the original.")


class ThreadChangeOutputSerializer(serializers.Serializer):
    thread = ThreadOutputSerializer()
    seq = serializers.IntegerField(allow_null=True, help_text="Null when nothing changed.")


class CommentChangeOutputSerializer(serializers.Serializer):
    comment = CommentOutputSerializer()
    seq = serializers.IntegerField(allow_null=True, help_text="Null when nothing changed.")


class CommentCreateOutputSerializer(CommentChangeOutputSerializer):
    duplicate = serializers.BooleanField(help_text="The key had been used: this is the original.")


class ReactionChangeOutputSerializer(serializers.Serializer):
    """The data of ``comments.reaction.added`` / ``removed``, with the event's ``seq``."""

    comment_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ReactionKind.choices)
    user = UserRefOutputSerializer()
    reactions = ReactionSummaryOutputSerializer(many=True)
    seq = serializers.IntegerField(allow_null=True, help_text="Null when nothing changed.")


class ReactionOutputSerializer(serializers.Serializer):
    """One user's reaction (model instances)."""

    kind = serializers.ChoiceField(choices=ReactionKind.choices)
    user = UserRefOutputSerializer()
    created_at = serializers.DateTimeField()


class RevisionOutputSerializer(serializers.Serializer):
    """A text a comment had before an edit (model instances)."""

    id = serializers.IntegerField()
    body = serializers.CharField()
    code = serializers.CharField()
    replaced_at = serializers.DateTimeField()


class ThreadEventOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    type = serializers.CharField(help_text="The wire type, e.g. comments.comment.created.")
    data = serializers.JSONField(help_text="As the thread's socket got it.")


class ThreadEventRangeOutputSerializer(serializers.Serializer):
    to = serializers.IntegerField(help_text="The last seq this page reaches.")
    seq = serializers.IntegerField(help_text="The thread's latest event.")
    more = serializers.BooleanField(help_text="Whether events after `to` remain.")
    results = ThreadEventOutputSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``from`` is a Python keyword, so it cannot be declared as a class attribute.
        return {"from": serializers.IntegerField(), **super().get_fields()}


class NotificationOutputSerializer(serializers.Serializer):
    """``selectors.notification_payload``."""

    id = serializers.IntegerField()
    kind = serializers.CharField(help_text=f"One of: {', '.join(NotificationKind.values)}.")
    actor = UserRefOutputSerializer(allow_null=True)
    thread_id = serializers.IntegerField()
    comment_id = serializers.IntegerField()
    target = TargetOutputSerializer()
    excerpt = serializers.CharField(help_text="Empty once the comment is deleted or hidden.")
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationsReadOutputSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="Those now read.")
    unread = serializers.IntegerField(help_text="The caller's unread notifications left.")


# --- input ---------------------------------------------------------------------------------------


class TargetQuerySerializer(serializers.Serializer):
    target_kind = serializers.ChoiceField(choices=TargetKind.choices)
    target_id = StrictIntegerField()
    target_key = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=64,
        default=None,
        help_text="Only threads on this form field (empty: on the form itself). Default: all.",
    )


class ThreadQuerySerializer(TargetQuerySerializer):
    resolved = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Default: both."
    )


class CommentQuerySerializer(serializers.Serializer):
    """Either ``thread``, or ``target_kind`` and ``target_id`` (and maybe ``target_key``)."""

    thread = StrictIntegerField(required=False, help_text="The comments of one thread.")
    target_kind = serializers.ChoiceField(choices=TargetKind.choices, required=False)
    target_id = StrictIntegerField(required=False)
    target_key = StrictCharField(required=False, allow_blank=True, max_length=64)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        target = {"target_kind", "target_id"} & set(attrs)
        if ("thread" in attrs) == bool(target) or len(target) == 1:
            raise serializers.ValidationError(
                "Give either 'thread', or 'target_kind' and 'target_id'."
            )
        return attrs


class ThreadEventQuerySerializer(serializers.Serializer):
    since = StrictIntegerField(
        required=False,
        default=0,
        help_text=f"Events after this seq (default 0). A page holds at most {MAX_EVENTS_PAGE}; "
        "`more` says if one follows.",
    )


class AnchorInputSerializer(serializers.Serializer):
    start = StrictIntegerField()
    end = StrictIntegerField()
    version = StrictIntegerField()


class CommentTextInputSerializer(serializers.Serializer):
    body = _text()
    code = _text(required=False, default="")
    code_language = _text(required=False, default="")


class CommentInputSerializer(CommentTextInputSerializer):
    thread_id = StrictIntegerField()
    parent_id = StrictIntegerField(required=False, allow_null=True, default=None)
    client_msg_id = _text(help_text="The idempotency key: sending it again returns the original.")


class ThreadInputSerializer(CommentTextInputSerializer):
    target_kind = serializers.ChoiceField(choices=TargetKind.choices)
    target_id = StrictIntegerField()
    target_key = _text(required=False, default="")
    anchor = AnchorInputSerializer(required=False, allow_null=True, default=None)
    client_msg_id = _text(help_text="The idempotency key: sending it again returns the original.")


class CommentEditInputSerializer(serializers.Serializer):
    body = _text()
    code = _text(required=False, allow_null=True, default=None, help_text="Default: kept.")
    code_language = _text(required=False, allow_null=True, default=None, help_text="Default: kept.")


class ReactionInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReactionKind.choices)


class AttachmentInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="Type read from its bytes; size and type per settings.")


class NotificationQuerySerializer(serializers.Serializer):
    unread = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: unread only; false: read only. Default: both.",
    )


class NotificationsReadInputSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=StrictIntegerField(min_value=1), max_length=MAX_READ_IDS, allow_empty=True
    )
