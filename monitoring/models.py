"""System events: an audit line per login, denial, rate-limit hit, alert or announcement."""

from __future__ import annotations

from django.conf import settings
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
