"""REST for comments, their revisions and reactions, and attachments (upload and download)."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from comments.models import Attachment, Comment, Reaction, Thread
from comments.selectors import (
    comment_payload,
    comments_with_relations,
    may_see_thread,
    target_role,
    thread_for_user,
    user_ref,
)
from comments.serializers import (
    AttachmentInputSerializer,
    CommentChangeOutputSerializer,
    CommentCreateOutputSerializer,
    CommentEditInputSerializer,
    CommentInputSerializer,
    CommentOutputSerializer,
    CommentQuerySerializer,
    ReactionChangeOutputSerializer,
    ReactionInputSerializer,
    ReactionOutputSerializer,
    RevisionOutputSerializer,
)
from comments.services import (
    attachment_add,
    comment_create,
    comment_delete,
    comment_edit,
    reaction_set,
)
from comments.views.base import (
    ATTACHMENT_ID,
    COMMENT_ID,
    KIND,
    AttachmentParser,
    CommentsViewSet,
    _gone,
    _visible_comment,
)
from config.errors import AppError, ErrorCode


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
