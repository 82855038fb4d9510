"""REST for comment threads, comments, reactions, attachments and notifications.

Bodies are the payloads of ``comments.selectors``, as WebSocket events carry them; a write
answers what the thread socket's ack holds: the changed object and the ``seq`` of the event it
made (None when nothing changed). A resubmitted ``client_msg_id`` answers 200 with the original
instead of 201. ``DELETE comments/<id>/`` answers 200 with the deleted comment (its text gone),
as the ``comments.comment.deleted`` event shows it.

Every route reads the thread through ``thread_for_user`` or a service that does: a thread,
comment or attachment whose target the caller may not see answers 404, as one that does not
exist; a role too low for the action answers 403. Writes also count against ``comments_write``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from comments.models import Attachment, Comment, Notification, Reaction, Thread
from comments.selectors import (
    comment_payload,
    comments_with_relations,
    events_between,
    may_see_thread,
    notification_payload,
    notifications_for,
    target_role,
    thread_for_user,
    thread_payloads,
    threads_of_target,
    unread_count,
    user_ref,
)
from comments.serializers import (
    MAX_EVENTS_PAGE,
    AttachmentInputSerializer,
    CommentChangeOutputSerializer,
    CommentCreateOutputSerializer,
    CommentEditInputSerializer,
    CommentInputSerializer,
    CommentOutputSerializer,
    CommentQuerySerializer,
    NotificationOutputSerializer,
    NotificationQuerySerializer,
    NotificationsReadInputSerializer,
    NotificationsReadOutputSerializer,
    ReactionChangeOutputSerializer,
    ReactionInputSerializer,
    ReactionOutputSerializer,
    RevisionOutputSerializer,
    ThreadChangeOutputSerializer,
    ThreadCreateOutputSerializer,
    ThreadEventQuerySerializer,
    ThreadEventRangeOutputSerializer,
    ThreadInputSerializer,
    ThreadListOutputSerializer,
    ThreadOutputSerializer,
    ThreadQuerySerializer,
)
from comments.services import (
    attachment_add,
    comment_create,
    comment_delete,
    comment_edit,
    notifications_mark_read,
    reaction_set,
    thread_create,
    thread_resolve,
)
from config.api import SharedRateThrottle
from config.errors import AppError, ErrorCode

# The URLs' converter admits 0 to 2**63 - 1; without these the schema would call them strings.
THREAD_ID = OpenApiParameter("thread_id", int, OpenApiParameter.PATH)
COMMENT_ID = OpenApiParameter("comment_id", int, OpenApiParameter.PATH)
ATTACHMENT_ID = OpenApiParameter("attachment_id", int, OpenApiParameter.PATH)
KIND = OpenApiParameter("kind", str, OpenApiParameter.PATH, description="A reaction kind.")
# What a multipart body may hold beyond the file itself: boundaries, headers, the file's name.
MULTIPART_OVERHEAD = 64 * 1024


class CommentWriteThrottle(SharedRateThrottle):
    """Every write to threads and comments, counted together per user, on top of the default."""

    scope = "comments_write"


class AttachmentParser(MultiPartParser):
    """Multipart, refused before it is parsed when it cannot hold a file within the limit."""

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH", "") if request is not None else ""
        limit = settings.COMMENTS_MAX_ATTACHMENT_BYTES
        if str(length).isdigit() and int(length) > limit + MULTIPART_OVERHEAD:
            raise AppError(ErrorCode.TOO_LARGE, f"Files are limited to {limit} bytes.")
        return super().parse(stream, media_type, parser_context)


class NotificationPagination(LimitOffsetPagination):
    """The project's pages, with the caller's unread count beside them."""

    def get_paginated_response(self, data: list[Any]) -> Response:
        response = super().get_paginated_response(data)
        response.data["unread"] = unread_count(user_id=self.request.user.pk)  # type: ignore[union-attr]
        return response

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["unread"] = {"type": "integer", "example": 3}
        paginated["required"] = [*paginated.get("required", []), "unread"]
        return paginated


class CommentsViewSet(viewsets.GenericViewSet):
    """Input serializers by action (the browsable API draws its forms from them), and the
    write throttle for the actions in ``writes``."""

    inputs: dict[str, type[serializers.Serializer]] = {}
    writes: frozenset[str] = frozenset()

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return self.inputs.get(self.action, serializers.Serializer)

    def get_queryset(self) -> QuerySet[Any]:
        # Only the browsable API asks, for its filter form; actions read through the selectors.
        return Thread.objects.none()

    def get_throttles(self) -> list[Any]:
        throttles = super().get_throttles()
        if self.action in self.writes:
            throttles.append(CommentWriteThrottle())
        return throttles

    def valid(self, data: Any) -> dict[str, Any]:
        serializer = self.get_serializer(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _visible_comment(user: Any, comment_id: int, comments: QuerySet[Comment]) -> Comment:
    comment = comments.filter(pk=comment_id).first()
    if comment is None or not may_see_thread(user=user, thread_id=comment.thread_id):
        raise AppError(ErrorCode.NOT_FOUND, "No such comment.")
    return comment


def _gone(comment: Comment) -> bool:
    return comment.deleted_at is not None or comment.hidden_at is not None


class ThreadViewSet(CommentsViewSet):
    """Threads of one target: list and start them; read, resolve, reopen, replay events."""

    inputs = {
        "list": ThreadQuerySerializer,
        "create": ThreadInputSerializer,
        "events": ThreadEventQuerySerializer,
    }
    writes = frozenset({"create", "resolve", "reopen"})

    @extend_schema(
        parameters=[ThreadQuerySerializer],
        responses={200: ThreadListOutputSerializer(many=True)},
        description="Newest first. Anchors are moved to the document's current version.",
    )
    def list(self, request: Request) -> Response:
        query = self.valid(request.query_params)
        target_role(
            user=request.user, target_kind=query["target_kind"], target_id=query["target_id"]
        )
        threads = threads_of_target(
            target_kind=query["target_kind"],
            target_id=query["target_id"],
            target_key=query["target_key"],
        )
        if query["resolved"] is not None:
            threads = threads.filter(resolved_at__isnull=not query["resolved"])
        # Meta.ordering does not apply to a query with GROUP BY (the comment count): pages
        # need an order of their own.
        page = self.paginate_queryset(threads.order_by("-created_at", "-id"))
        payloads = thread_payloads(page)  # type: ignore[arg-type]
        rows = [
            {**p, "comment_count": t.comment_count} for p, t in zip(payloads, page, strict=True)
        ]  # type: ignore[arg-type]
        return self.get_paginated_response(rows)

    @extend_schema(
        request=ThreadInputSerializer,
        responses={201: ThreadCreateOutputSerializer, 200: ThreadCreateOutputSerializer},
        description="A thread with its first comment. 200: the key had been used (the original).",
    )
    def create(self, request: Request) -> Response:
        result = thread_create(user=request.user, **self.valid(request.data))
        body = {
            "thread": result.thread,
            "comment": result.comment,
            "seq": result.seq,
            "duplicate": result.duplicate,
        }
        return Response(body, status=status.HTTP_200_OK if result.duplicate else 201)

    @extend_schema(parameters=[THREAD_ID], responses={200: ThreadOutputSerializer})
    def retrieve(self, request: Request, thread_id: int) -> Response:
        thread, _, _ = thread_for_user(user=request.user, thread_id=thread_id)
        return Response(thread_payloads([thread])[0])

    @extend_schema(
        parameters=[THREAD_ID],
        request=None,
        responses={200: ThreadChangeOutputSerializer},
        description="Editors, owners and the thread's author.",
    )
    def resolve(self, request: Request, thread_id: int) -> Response:
        result = thread_resolve(user=request.user, thread_id=thread_id, resolved=True)
        return Response({**result.data, "seq": result.seq})

    @extend_schema(
        parameters=[THREAD_ID],
        request=None,
        responses={200: ThreadChangeOutputSerializer},
        description="Editors, owners and the thread's author.",
    )
    def reopen(self, request: Request, thread_id: int) -> Response:
        result = thread_resolve(user=request.user, thread_id=thread_id, resolved=False)
        return Response({**result.data, "seq": result.seq})

    @extend_schema(
        parameters=[THREAD_ID, ThreadEventQuerySerializer],
        responses={200: ThreadEventRangeOutputSerializer},
        description="The thread's events after `since`, as its socket got them: resume by REST.",
    )
    def events(self, request: Request, thread_id: int) -> Response:
        thread, _, _ = thread_for_user(user=request.user, thread_id=thread_id)
        since, current = self.valid(request.query_params)["since"], thread.last_seq
        if since > current:
            raise serializers.ValidationError({"since": f"This thread has events 1 to {current}."})
        upto = min(current, since + MAX_EVENTS_PAGE)
        events = events_between(thread_id=thread.pk, after=since, upto=upto)
        return Response(
            {
                "from": since,
                "to": upto,
                "seq": current,
                "more": upto < current,
                "results": [{"seq": e.seq, "type": e.type, "data": e.data} for e in events],
            }
        )


class CommentViewSet(CommentsViewSet):
    """Comments of a thread or a target: list and post; read, edit (author), delete (author or
    the target's owner), and the edit history."""

    inputs = {
        "list": CommentQuerySerializer,
        "create": CommentInputSerializer,
        "partial_update": CommentEditInputSerializer,
    }
    writes = frozenset({"create", "partial_update", "destroy"})

    @extend_schema(
        parameters=[CommentQuerySerializer], responses={200: CommentOutputSerializer(many=True)}
    )
    def list(self, request: Request) -> Response:
        query = self.valid(request.query_params)
        if "thread" in query:
            thread, _, _ = thread_for_user(user=request.user, thread_id=query["thread"])
            comments = Comment.objects.filter(thread=thread)
        else:
            kind, target_id = query["target_kind"], query["target_id"]
            target_role(user=request.user, target_kind=kind, target_id=target_id)
            threads = Thread.objects.filter(target_kind=kind, target_id=target_id)
            if "target_key" in query:
                threads = threads.filter(target_key=query["target_key"])
            comments = Comment.objects.filter(thread__in=threads)
        page = self.paginate_queryset(comments_with_relations(comments))
        return self.get_paginated_response([comment_payload(c) for c in page])  # type: ignore[union-attr]

    @extend_schema(
        request=CommentInputSerializer,
        responses={201: CommentCreateOutputSerializer, 200: CommentCreateOutputSerializer},
        description="A comment, or a reply to `parent_id`. 200: the key had been used.",
    )
    def create(self, request: Request) -> Response:
        result = comment_create(user=request.user, **self.valid(request.data))
        body = {"comment": result.data, "seq": result.seq, "duplicate": result.duplicate}
        return Response(body, status=status.HTTP_200_OK if result.duplicate else 201)

    @extend_schema(parameters=[COMMENT_ID], responses={200: CommentOutputSerializer})
    def retrieve(self, request: Request, comment_id: int) -> Response:
        comments = comments_with_relations(Comment.objects.all())
        return Response(comment_payload(_visible_comment(request.user, comment_id, comments)))

    @extend_schema(
        parameters=[COMMENT_ID],
        request=CommentEditInputSerializer,
        responses={200: CommentChangeOutputSerializer},
        description="The author only. Leaving `code` out keeps the snippet.",
    )
    def partial_update(self, request: Request, comment_id: int) -> Response:
        result = comment_edit(user=request.user, comment_id=comment_id, **self.valid(request.data))
        return Response({"comment": result.data, "seq": result.seq})

    @extend_schema(
        parameters=[COMMENT_ID],
        responses={200: CommentChangeOutputSerializer},
        description="The author, or the target's owner. Soft: the comment keeps its place in "
        "the thread, its text goes. Answers the deleted comment.",
    )
    def destroy(self, request: Request, comment_id: int) -> Response:
        result = comment_delete(user=request.user, comment_id=comment_id)
        return Response({"comment": result.data, "seq": result.seq})

    @extend_schema(
        parameters=[COMMENT_ID],
        responses={200: RevisionOutputSerializer(many=True)},
        description="Earlier texts, oldest first. None for a deleted or hidden comment.",
    )
    def revisions(self, request: Request, comment_id: int) -> Response:
        comment = _visible_comment(request.user, comment_id, Comment.objects.all())
        revisions = comment.revisions.none() if _gone(comment) else comment.revisions.all()
        page = self.paginate_queryset(revisions)
        return self.get_paginated_response(
            [
                {
                    "id": r.pk,
                    "body": r.body,
                    "code": r.code,
                    "replaced_at": r.replaced_at.isoformat(),
                }
                for r in page  # type: ignore[union-attr]
            ]
        )


class ReactionViewSet(CommentsViewSet):
    """Who reacted how to a comment; the caller adds and removes their own reactions."""

    inputs = {"create": ReactionInputSerializer}
    writes = frozenset({"create", "destroy"})

    @extend_schema(
        parameters=[COMMENT_ID],
        responses={200: ReactionOutputSerializer(many=True)},
        description="Oldest first. None for a deleted or hidden comment.",
    )
    def list(self, request: Request, comment_id: int) -> Response:
        comment = _visible_comment(request.user, comment_id, Comment.objects.all())
        reactions = Reaction.objects.filter(comment=comment).select_related("user").order_by("id")
        page = self.paginate_queryset(reactions.none() if _gone(comment) else reactions)
        return self.get_paginated_response(
            [
                {"kind": r.kind, "user": user_ref(r.user), "created_at": r.created_at.isoformat()}
                for r in page  # type: ignore[union-attr]
            ]
        )

    @extend_schema(
        parameters=[COMMENT_ID],
        request=ReactionInputSerializer,
        responses={201: ReactionChangeOutputSerializer, 200: ReactionChangeOutputSerializer},
        description="201: added; 200: the caller had reacted so already.",
    )
    def create(self, request: Request, comment_id: int) -> Response:
        kind = self.valid(request.data)["kind"]
        result = reaction_set(user=request.user, comment_id=comment_id, kind=kind, present=True)
        added = result.seq is not None
        return Response({**result.data, "seq": result.seq}, status=201 if added else 200)

    @extend_schema(
        parameters=[COMMENT_ID, KIND],
        responses={204: None},
        description="Removing a reaction the caller does not have also answers 204.",
    )
    def destroy(self, request: Request, comment_id: int, kind: str) -> Response:
        reaction_set(user=request.user, comment_id=comment_id, kind=kind, present=False)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CommentAttachmentViewSet(CommentsViewSet):
    """Files on one's own comment, uploaded as multipart ``file``."""

    parser_classes = [AttachmentParser]
    inputs = {"create": AttachmentInputSerializer}
    writes = frozenset({"create"})

    @extend_schema(
        parameters=[COMMENT_ID],
        request={"multipart/form-data": AttachmentInputSerializer},
        responses={201: CommentChangeOutputSerializer},
        description="The author only. Size and type (read from the bytes) within the settings.",
    )
    def create(self, request: Request, comment_id: int) -> Response:
        upload = self.valid(request.data)["file"]
        result = attachment_add(user=request.user, comment_id=comment_id, upload=upload)
        body = {"comment": result.data, "seq": result.seq}
        return Response(body, status=status.HTTP_201_CREATED)


class AttachmentViewSet(CommentsViewSet):
    """Downloads, with the permissions of the comment's thread."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # A file answers whatever the client accepts; only errors are rendered (as JSON).
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[ATTACHMENT_ID],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, with its stored Content-Type."
            )
        },
        description="404 also when the comment was deleted or hidden.",
    )
    def retrieve(self, request: Request, attachment_id: int) -> FileResponse:
        attachment = Attachment.objects.select_related("comment").filter(pk=attachment_id).first()
        if (
            attachment is None
            or _gone(attachment.comment)
            or not may_see_thread(user=request.user, thread_id=attachment.comment.thread_id)
        ):
            raise AppError(ErrorCode.NOT_FOUND, "No such attachment.")
        try:
            file = attachment.file.open("rb")
        except FileNotFoundError:
            raise AppError(ErrorCode.NOT_FOUND, "No such attachment.") from None
        response = FileResponse(
            file, as_attachment=True, filename=attachment.name, content_type=attachment.content_type
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-cache"
        return response


class NotificationViewSet(CommentsViewSet):
    """The caller's own notifications, newest first, and marking them read."""

    pagination_class = NotificationPagination
    inputs = {"list": NotificationQuerySerializer, "read": NotificationsReadInputSerializer}

    def get_queryset(self) -> QuerySet[Any]:
        return Notification.objects.none()

    @extend_schema(
        parameters=[NotificationQuerySerializer],
        responses={200: NotificationOutputSerializer(many=True)},
    )
    def list(self, request: Request) -> Response:
        unread = self.valid(request.query_params)["unread"]
        notifications = notifications_for(user_id=request.user.pk)
        if unread is not None:
            notifications = notifications.filter(read_at__isnull=unread)
        page = self.paginate_queryset(notifications)
        return self.get_paginated_response([notification_payload(n) for n in page])  # type: ignore[union-attr]

    @extend_schema(
        request=NotificationsReadInputSerializer,
        responses={200: NotificationsReadOutputSerializer},
        description="Others' ids are ignored.",
    )
    def read(self, request: Request) -> Response:
        ids = self.valid(request.data)["ids"]
        return Response(notifications_mark_read(user=request.user, ids=ids))

    @extend_schema(request=None, responses={200: NotificationsReadOutputSerializer})
    def read_all(self, request: Request) -> Response:
        return Response(notifications_mark_read(user=request.user))
