"""Threads of comments on documents, forms and form fields (DESIGN sections 4, 5, 8).

A thread names its target by kind and id (``document`` 42, ``form`` 7, ``form_field`` 7 with
key ``email``) rather than by foreign key, so threads can attach to each app's objects without
comments importing them; who may see a thread is who may see its target. Every change to a
thread is a ``ThreadEvent`` with a gap-free ``seq``: clients resume a thread from it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

MAX_BODY = 2000


class TargetKind(models.TextChoices):
    DOCUMENT = "document"
    FORM = "form"
    FORM_FIELD = "form_field"


class Thread(models.Model):
    target_kind = models.CharField(max_length=16, choices=TargetKind.choices)
    target_id = models.PositiveBigIntegerField()
    target_key = models.CharField(max_length=64, blank=True, default="")  # a form field's key
    # An optional anchor in a document: code points [start, end) at a document version, moved
    # through later ops with collab.ot.transform_cursor when read.
    anchor_start = models.PositiveIntegerField(null=True, blank=True)
    anchor_end = models.PositiveIntegerField(null=True, blank=True)
    anchor_version = models.PositiveBigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    last_seq = models.PositiveBigIntegerField(default=0)  # of the thread's latest event
    # The creator's idempotency key: creating a thread again with it returns the original.
    client_msg_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["target_kind", "target_id"], name="comments_thread_target"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(anchor_start__isnull=True, anchor_end__isnull=True)
                    | models.Q(anchor_start__lte=models.F("anchor_end"))
                ),
                name="comments_anchor_ordered",
            ),
            models.UniqueConstraint(
                fields=["created_by", "client_msg_id"],
                condition=~models.Q(client_msg_id=""),
                name="comments_thread_once",
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        key = f".{self.target_key}" if self.target_key else ""
        return f"thread #{self.pk} on {self.target_kind} {self.target_id}{key}"


class Comment(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="comments")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField(max_length=MAX_BODY)
    code = models.TextField(blank=True, default="")  # an optional snippet
    code_language = models.CharField(max_length=32, blank=True, default="")
    mentions = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="mentioned_in"
    )
    # The client's idempotency key: the same key from the same author returns the original.
    client_msg_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)  # soft: the thread keeps its shape
    hidden_at = models.DateTimeField(null=True, blank=True)  # moderation
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["thread", "author", "client_msg_id"], name="comments_comment_once"
            ),
        ]
        indexes = [
            # A thread's comments in order (snapshots, REST, "who started it") without walking
            # every comment of every thread by id.
            models.Index(fields=["thread", "created_at", "id"], name="comments_thread_order"),
        ]
        ordering = ["thread_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"comment #{self.pk} in thread #{self.thread_id}"


class CommentRevision(models.Model):
    """A body a comment had before an edit: the edit history."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="revisions")
    body = models.TextField(max_length=MAX_BODY)
    code = models.TextField(blank=True, default="")
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["comment_id", "replaced_at", "id"]

    def __str__(self) -> str:
        return f"earlier text of comment #{self.comment_id}"


class Attachment(models.Model):
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="comments/%Y/%m/")
    name = models.CharField(max_length=200)
    size = models.PositiveIntegerField()
    content_type = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["comment_id", "id"]

    def __str__(self) -> str:
        return f"{self.name} on comment #{self.comment_id}"


class ReactionKind(models.TextChoices):
    LIKE = "like"
    LOVE = "love"
    LAUGH = "laugh"
    WOW = "wow"
    SAD = "sad"
    ANGRY = "angry"


class Reaction(models.Model):
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=ReactionKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["comment", "user", "kind"], name="comments_reaction_once"
            ),
        ]
        ordering = ["comment_id", "id"]

    def __str__(self) -> str:
        return f"{self.kind} by user #{self.user_id} on comment #{self.comment_id}"


class NotificationKind(models.TextChoices):
    MENTION = "mention"
    REPLY = "reply"
    REACTION = "reaction"


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comment_notifications"
    )
    kind = models.CharField(max_length=8, choices=NotificationKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="+")
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="comments_unread"),
            models.Index(fields=["recipient", "created_at", "id"], name="comments_inbox"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} for user #{self.recipient_id} on comment #{self.comment_id}"


class ThreadEvent(models.Model):
    """Every change to a thread, in order: what resume (``since``) replays."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    # The comment the event is about, if any: a delete or a hide scrubs its earlier events.
    comment = models.ForeignKey(
        Comment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    type = models.CharField(max_length=48)  # the wire type, e.g. comments.comment.created
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "seq"], name="comments_event_seq_once"),
        ]
        ordering = ["thread_id", "seq"]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} of thread #{self.thread_id}"
