"""Documents edited together, their members, every committed op, and saved versions (DESIGN 6).

A document's ``content`` and ``version`` are its current snapshot: ``version`` counts the ops
applied, and op number ``n`` (``Operation.version == n``) turned version ``n - 1`` into ``n``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Document(models.Model):
    title = models.CharField(max_length=200)
    # The named owner, kept in step with the owner memberships (services move it when that
    # owner steps down). Deleting the user's account leaves the document to its other members.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="owned_documents",
    )
    content = models.TextField(blank=True, default="")
    version = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"{self.title} (#{self.pk}, v{self.version})"


class Role(models.TextChoices):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


class DocumentMember(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="document_memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "user"], name="collab_member_once"),
        ]
        ordering = ["document_id", "id"]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of document #{self.document_id}"


class Operation(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="operations")
    version = models.PositiveBigIntegerField()  # the document version this op produced
    op = models.JSONField()  # as committed: transformed through every op before it
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    client_id = models.CharField(max_length=64)
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "version"], name="collab_op_version_once"),
            # The idempotency key: a resubmitted op is found here, never applied twice.
            models.UniqueConstraint(
                fields=["document", "client_id", "seq"], name="collab_op_submitted_once"
            ),
        ]
        ordering = ["document_id", "version"]

    def __str__(self) -> str:
        return f"op v{self.version} of document #{self.document_id}"


class DocumentVersion(models.Model):
    """A saved snapshot: every ``COLLAB_SNAPSHOT_EVERY`` ops (no name), or named by a member."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveBigIntegerField()
    content = models.TextField(blank=True, default="")
    name = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["document", "version"],
                condition=models.Q(name=""),
                name="collab_auto_snapshot_once",
            ),
        ]
        indexes = [models.Index(fields=["document", "version"], name="collab_version_lookup")]
        ordering = ["document_id", "-version", "-id"]

    def __str__(self) -> str:
        label = self.name or "snapshot"
        return f"{label} at v{self.version} of document #{self.document_id}"
