"""Comments in the admin: moderators look, and hide or restore comments through
``comment_moderate``; nothing else is written here.

Threads, comments and events carry client idempotency keys and gap-free event seqs, and every
change must reach the thread's viewers as an event: so no record is added or edited in the
admin. A superuser may delete a whole thread (its comments and events go with it, its sockets
are closed and its files leave storage).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from comments.models import (
    Attachment,
    Comment,
    CommentRevision,
    Notification,
    Reaction,
    Thread,
    ThreadEvent,
)
from comments.services import comment_moderate, thread_delete
from config.admin import ReadOnlyAdminMixin, ViewOnlyInline
from config.errors import AppError, ErrorCode

EXCERPT = 80


def excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else f"{text[: EXCERPT - 1]}…"


class SetFilter(admin.SimpleListFilter):
    """Yes / no on whether a nullable timestamp (``field``) is set."""

    field = ""

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        if self.value() not in ("yes", "no"):
            return queryset
        return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})


class ResolvedFilter(SetFilter):
    title = parameter_name = "resolved"
    field = "resolved_at"


class HiddenFilter(SetFilter):
    title = parameter_name = "hidden"
    field = "hidden_at"


class DeletedFilter(SetFilter):
    title = parameter_name = "deleted"
    field = "deleted_at"


class ReadFilter(SetFilter):
    title = parameter_name = "read"
    field = "read_at"


# --- threads -------------------------------------------------------------------------------------


class CommentColumns:
    """What a comment's row shows, in its thread's inline and in the comment list."""

    @admin.display(description="body")
    def body_excerpt(self, comment: Comment) -> str:
        return excerpt(comment.body)

    @admin.display(boolean=True, ordering="deleted_at")
    def deleted(self, comment: Comment) -> bool:
        return comment.deleted_at is not None

    @admin.display(boolean=True, ordering="hidden_at")
    def hidden(self, comment: Comment) -> bool:
        return comment.hidden_at is not None


class CommentInline(CommentColumns, ViewOnlyInline):
    model = Comment
    fields = readonly_fields = ("author", "body_excerpt", "created_at", "deleted", "hidden")
    show_change_link = True  # where a moderator hides or restores it

    def get_queryset(self, request: HttpRequest) -> QuerySet[Comment]:
        return super().get_queryset(request).select_related("author")


# The records a thread's deletion takes with it: each is read-only on its own.
CASCADED = {
    model._meta.verbose_name
    for model in (Comment, CommentRevision, Attachment, Reaction, Notification, ThreadEvent)
}


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "target_kind",
        "target_id",
        "target_key",
        "created_by",
        "created_at",
        "resolved",
        "last_seq",
        "comment_count",
    )
    list_filter = ("target_kind", ResolvedFilter)
    list_select_related = ("created_by",)
    search_fields = ("target_id__exact", "created_by__username")
    readonly_fields = ("created_at",)  # not editable: the view-only page would leave it out
    inlines = [CommentInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Thread]:
        return super().get_queryset(request).annotate(comment_count=Count("comments"))

    @admin.display(description="comments", ordering="comment_count")
    def comment_count(self, thread: Thread) -> int:
        return thread.comment_count  # type: ignore[attr-defined]

    @admin.display(boolean=True, ordering="resolved_at")
    def resolved(self, thread: Thread) -> bool:
        return thread.resolved_at is not None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # resolving is thread_resolve's, with its event

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser  # type: ignore[union-attr]

    def get_deleted_objects(self, objs, request):  # type: ignore[no-untyped-def]
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - CASCADED, protected

    # Through the service: open sockets are told and closed, files leave storage.
    def delete_model(self, request: HttpRequest, obj: Thread) -> None:
        thread_delete(thread_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Thread]) -> None:
        for thread_id in queryset.values_list("pk", flat=True):
            thread_delete(thread_id=thread_id)


# --- comments ------------------------------------------------------------------------------------


class RevisionInline(ViewOnlyInline):
    model = CommentRevision
    fields = readonly_fields = ("body", "code", "replaced_at")


class AttachmentInline(ViewOnlyInline):
    model = Attachment
    # Not the file itself: attachments are served only through the API, which checks the
    # thread's permissions, never from MEDIA_URL (comments/selectors.py).
    fields = readonly_fields = ("name", "size", "content_type", "created_at")


@admin.register(Comment)
class CommentAdmin(CommentColumns, admin.ModelAdmin):
    list_display = (
        "id",
        "thread",
        "author",
        "body_excerpt",
        "created_at",
        "edited",
        "deleted",
        "hidden",
    )
    list_filter = (HiddenFilter, DeletedFilter, "thread__target_kind")
    list_select_related = ("thread", "author")
    search_fields = ("body", "author__username")
    readonly_fields = ("created_at",)
    actions = ["hide_comments", "restore_comments"]
    inlines = [RevisionInline, AttachmentInline]

    @admin.display(boolean=True, ordering="edited_at")
    def edited(self, comment: Comment) -> bool:
        return comment.edited_at is not None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The change permission is the moderation permission (the actions); a comment's page
        # is view-only: moderators hide people's words, they never rewrite them.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # deleting is comment_delete's: soft, with its event, and scrubbed

    @admin.action(description="Hide selected comments", permissions=["change"])
    def hide_comments(self, request: HttpRequest, queryset: QuerySet[Comment]) -> None:
        self._moderate(request, queryset, hidden=True)

    @admin.action(description="Restore selected comments", permissions=["change"])
    def restore_comments(self, request: HttpRequest, queryset: QuerySet[Comment]) -> None:
        self._moderate(request, queryset, hidden=False)

    def _moderate(self, request: HttpRequest, queryset: QuerySet[Comment], *, hidden: bool) -> None:
        changed = 0
        # One transaction per comment, as the service owns it: each event is broadcast on commit.
        for comment_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                result = comment_moderate(
                    moderator=request.user, comment_id=comment_id, hidden=hidden
                )
            except AppError as error:
                if error.code != ErrorCode.NOT_FOUND:
                    raise
                continue  # gone (its thread deleted) since the list was shown
            changed += result.seq is not None
        verb = "hidden" if hidden else "restored"
        noun = "comment was" if changed == 1 else "comments were"
        self.message_user(request, f"{changed} {noun} {verb}.", messages.SUCCESS)


# --- read-only records ---------------------------------------------------------------------------


@admin.register(CommentRevision)
class CommentRevisionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "comment", "body_excerpt", "replaced_at")
    list_select_related = ("comment",)
    search_fields = ("body",)
    readonly_fields = ("replaced_at",)

    @admin.display(description="body")
    def body_excerpt(self, revision: CommentRevision) -> str:
        return excerpt(revision.body)


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "comment", "size", "content_type", "created_at")
    list_filter = ("content_type",)
    list_select_related = ("comment",)
    search_fields = ("name",)
    fields = ("comment", "name", "stored_as", "size", "content_type", "created_at")
    readonly_fields = ("stored_as", "created_at")

    @admin.display(description="stored as")
    def stored_as(self, attachment: Attachment) -> str:
        return attachment.file.name  # no link: see AttachmentInline


@admin.register(Reaction)
class ReactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "comment", "user", "kind", "created_at")
    list_filter = ("kind",)
    list_select_related = ("comment", "user")
    search_fields = ("user__username",)
    readonly_fields = ("created_at",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "recipient", "kind", "actor", "thread", "comment", "created_at", "read")
    list_filter = ("kind", ReadFilter)
    list_select_related = ("recipient", "actor", "thread", "comment")
    search_fields = ("recipient__username", "actor__username")
    readonly_fields = ("created_at",)

    @admin.display(boolean=True, ordering="read_at")
    def read(self, notification: Notification) -> bool:
        return notification.read_at is not None


@admin.register(ThreadEvent)
class ThreadEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("thread", "seq", "type", "comment", "created_at")
    list_filter = ("type",)
    list_select_related = ("thread", "comment")
    search_fields = ("thread__id__exact", "type")
    readonly_fields = ("created_at",)
