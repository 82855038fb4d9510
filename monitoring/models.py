"""System events (an audit line per login, denial, rate-limit hit, alert or staff action), and
what staff control on every worker: apps switched off, announcements (DESIGN section 1).

``LiveConnections`` keeps no table: it gives the admin its live connections page and staff the
permission to disconnect a user (``monitoring.disconnect_user``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone


class EventKind(models.TextChoices):
    LOGIN = "login"
    LOGOUT = "logout"
    LOGIN_FAILED = "login_failed"
    WS_DENIED = "ws_denied"
    RATE_LIMITED = "rate_limited"
    PERMISSION_DENIED = "permission_denied"
    FORM_SUBMITTED = "form_submitted"
    HEALTH_ALERT = "health_alert"
    SECURITY_ALERT = "security_alert"
    ANNOUNCEMENT = "announcement"
    STAFF_ACTION = "staff_action"
    USER_ACTIVITY = "user_activity"


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class SystemEvent(models.Model):
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.INFO)
    # Kept when the user is deleted: the audit line outlives the account.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Listing and pruning by time; alert rules count one kind over a recent window.
            models.Index(fields=["created_at"], name="monitoring_event_time"),
            models.Index(fields=["kind", "created_at"], name="monitoring_event_kind_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(severity__in=Severity.values), name="monitoring_event_severity"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=EventKind.values), name="monitoring_event_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.severity}) #{self.pk}"


class RealtimeApp(models.TextChoices):
    """The apps whose real-time features staff may switch off (their RealtimeConsumer.app).
    Not monitoring: staff need its socket most when something is wrong."""

    PRESENCE = "presence"
    COLLAB = "collab"
    COMMENTS = "comments"
    FORMS = "forms"


class AppSwitch(models.Model):
    """One row per switchable app; off means its sockets are closed and refused (4503) on
    every worker, while its REST API keeps working."""

    app = models.CharField(max_length=32, choices=RealtimeApp.choices, unique=True)
    enabled = models.BooleanField(default=True)
    reason = models.CharField(max_length=200, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["app"]
        verbose_name = "real-time app switch"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(app__in=RealtimeApp.values), name="monitoring_switch_app"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.app}: {'on' if self.enabled else 'off'}"


class AnnouncementLevel(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Announcement(models.Model):
    """A notice (maintenance and the like) every connected user gets live, and every user who
    connects before it expires or is withdrawn gets on connect."""

    text = models.CharField(max_length=500)
    level = models.CharField(
        max_length=16, choices=AnnouncementLevel.choices, default=AnnouncementLevel.INFO
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["expires_at"], name="monitoring_announce_expiry")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="monitoring_announce_expires_later",
            ),
            models.CheckConstraint(
                condition=models.Q(level__in=AnnouncementLevel.values),
                name="monitoring_announce_level",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.text[:60]}"

    def is_live(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        return self.withdrawn_at is None and self.expires_at > (now or timezone.now())


class LiveConnections(get_user_model()):  # type: ignore[misc]
    class Meta:
        proxy = True
        verbose_name = "live connections"
        verbose_name_plural = "live connections"
        permissions = [("disconnect_user", "Can disconnect every socket of a user")]
