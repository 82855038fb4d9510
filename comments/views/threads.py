"""REST for threads: list and start them on a target; read, resolve, reopen, replay events."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from comments.selectors import (
    events_between,
    target_role,
    thread_for_user,
    thread_payloads,
    threads_of_target,
)
from comments.serializers import (
    MAX_EVENTS_PAGE,
    ThreadChangeOutputSerializer,
    ThreadCreateOutputSerializer,
    ThreadEventQuerySerializer,
    ThreadEventRangeOutputSerializer,
    ThreadInputSerializer,
    ThreadListOutputSerializer,
    ThreadOutputSerializer,
    ThreadQuerySerializer,
)
from comments.services import thread_create, thread_resolve
from comments.views.base import THREAD_ID, CommentsViewSet


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
