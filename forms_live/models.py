"""Forms built together and filled live (DESIGN sections 4, 5 and 8; issue 6).

A form has members with roles (owner, editor, viewer, as documents do), fields in an order, and
a ``revision`` that every builder change raises by one. Each change is a ``FormChange`` row with
that revision: builders resume from it. How two builders' changes to one field property at the
same base revision combine is the form's conflict policy (``forms_live/merge.py``); under the
manual policy a real conflict keeps the current value and opens a ``FieldConflict``.

Respondents fill a published form in a ``Submission``: values, per-field validation, progress,
status (in progress, submitted, then processing and completed as owners move it on) and the
device it came from. A submission's ``revision`` rises with every change: the dashboard's feed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

MAX_TITLE = 200
MAX_KEY = 64


class Role(models.TextChoices):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


class FormStatus(models.TextChoices):
    DRAFT = "draft"
    PUBLISHED = "published"
    CLOSED = "closed"


class ConflictPolicy(models.TextChoices):
    LAST_WRITER_WINS = "lww"
    MERGE = "merge"
    MANUAL = "manual"


class Form(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    title = models.CharField(max_length=MAX_TITLE)
    status = models.CharField(max_length=12, choices=FormStatus.choices, default=FormStatus.DRAFT)
    conflict_policy = models.CharField(
        max_length=8, choices=ConflictPolicy.choices, default=ConflictPolicy.MERGE
    )
    # Respondents' names are not kept: the owner sees a token, never who filled it.
    anonymous = models.BooleanField(default=False)
    revision = models.PositiveBigIntegerField(default=0)  # of the latest FormChange
    views = models.PositiveBigIntegerField(default=0)  # fill pages opened: the funnel's top
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.title


class FormMember(models.Model):
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="form_memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["form", "user"], name="forms_member_once"),
        ]
        ordering = ["form_id", "id"]

    def __str__(self) -> str:
        return f"{self.user_id} is {self.role} of form {self.form_id}"


class FieldType(models.TextChoices):
    TEXT = "text"
    LONG_TEXT = "long_text"
    NUMBER = "number"
    EMAIL = "email"
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    CHECKBOX = "checkbox"
    DATE = "date"


class FormField(models.Model):
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="fields")
    key = models.CharField(max_length=MAX_KEY)  # stable: submissions' values are keyed by it
    type = models.CharField(max_length=16, choices=FieldType.choices)
    label = models.CharField(max_length=MAX_TITLE)
    help = models.TextField(blank=True, default="")
    required = models.BooleanField(default=False)
    rules = models.JSONField(default=dict, blank=True)  # validation.RULES, by type
    options = models.JSONField(default=list, blank=True)  # choice types: distinct strings
    position = models.PositiveIntegerField(default=0)
    # The form revision that last changed each property, {"label": 12}: a change made at an
    # older base revision to a property changed since is concurrent (merge.decide).
    changed_at = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["form", "key"], name="forms_field_key_once"),
        ]
        ordering = ["form_id", "position", "id"]

    def __str__(self) -> str:
        return f"{self.key} of form {self.form_id}"


class FormChange(models.Model):
    """One builder change, in order: what resume (``since``) replays, and the merge history."""

    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="changes")
    revision = models.PositiveBigIntegerField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # The client's idempotency key: the same key from the same author returns the original.
    client_msg_id = models.CharField(max_length=64)
    base_revision = models.PositiveBigIntegerField()
    type = models.CharField(max_length=48)  # the wire type, e.g. forms.field.changed
    field_key = models.CharField(max_length=MAX_KEY, blank=True, default="")
    data = models.JSONField()  # the event's data, as broadcast
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["form", "revision"], name="forms_change_revision_once"),
            models.UniqueConstraint(
                fields=["form", "author", "client_msg_id"], name="forms_change_once"
            ),
        ]
        ordering = ["form_id", "revision"]

    def __str__(self) -> str:
        return f"{self.type} r{self.revision} of form {self.form_id}"


class ConflictStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"


class FieldConflict(models.Model):
    """Under the manual policy: two builders changed one property from one base revision."""

    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="conflicts")
    field = models.ForeignKey(FormField, on_delete=models.CASCADE, related_name="conflicts")
    prop = models.CharField(max_length=32)
    base_revision = models.PositiveBigIntegerField()
    current_value = models.JSONField(null=True)  # kept when the conflict opened
    current_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    proposed_value = models.JSONField(null=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    status = models.CharField(
        max_length=8, choices=ConflictStatus.choices, default=ConflictStatus.OPEN
    )
    resolution = models.CharField(max_length=16, blank=True, default="")  # current/proposed/custom
    resolved_value = models.JSONField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["form", "status"], name="forms_conflicts_open")]
        ordering = ["form_id", "-created_at", "-id"]

    def __str__(self) -> str:
        return f"conflict on {self.prop} of field {self.field_id}"


class SubmissionStatus(models.TextChoices):
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    COMPLETED = "completed"


class Submission(models.Model):
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="submissions")
    respondent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="form_submissions",
    )
    # On an anonymous form no respondent is stored: this secret token is how the respondent's
    # sockets find their submission again, and all the owner sees of them.
    token = models.CharField(max_length=32, unique=True)
    status = models.CharField(
        max_length=12, choices=SubmissionStatus.choices, default=SubmissionStatus.IN_PROGRESS
    )
    values = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=dict, blank=True)  # field key -> validation codes
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    last_field = models.CharField(max_length=MAX_KEY, blank=True, default="")
    revision = models.PositiveBigIntegerField(default=0)  # rises with every change
    browser = models.CharField(max_length=64, blank=True, default="")
    os = models.CharField(max_length=64, blank=True, default="")
    device_type = models.CharField(max_length=16, blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One submission per known respondent and form.
            models.UniqueConstraint(
                fields=["form", "respondent"],
                condition=models.Q(respondent__isnull=False),
                name="forms_submission_once",
            ),
        ]
        indexes = [models.Index(fields=["form", "status"], name="forms_submissions_by_status")]
        ordering = ["form_id", "-started_at", "-id"]

    def __str__(self) -> str:
        return f"submission {self.token} to form {self.form_id}"
