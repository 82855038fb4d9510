"""REST building blocks every app shares: strict input fields, the user reference, id routes.

class ThingInputSerializer(serializers.Serializer):
    parent_id = StrictIntegerField(min_value=1)
    name = StrictCharField(max_length=200)

path("things/<bigid:thing_id>/", ...)     # 0 to MAX_ID; a larger number is no route (404)
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.urls import register_converter
from rest_framework import serializers, viewsets
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.throttling import BaseThrottle

MAX_ID = 2**63 - 1  # PostgreSQL bigint: larger ids exist nowhere and would fail in SQL
_DIGITS = re.compile(r"[0-9]{1,19}")


class StrictIntegerField(serializers.IntegerField):
    """0 to MAX_ID, in ASCII digits only: DRF's IntegerField also takes "1.0", " 1" and any
    digits Python's int() reads, Arabic-Indic ones included."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and not _DIGITS.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """Text only: DRF's CharField turns 7 into "7" and True into "True"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class UserRefOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(source="get_username")


class IdConverter:
    """0 to MAX_ID. A larger number is no route, so a 404, never a bigint error as a 500."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "bigid")


class Pagination(LimitOffsetPagination):
    """limit/offset pages with a cap on limit: DRF's default has none, and a limit past
    PostgreSQL's bigint failed in SQL (a 500, found by tests/integration/reliability/
    test_schemathesis.py). A larger limit is cut to the cap, as DRF does."""

    max_limit = 1000


class ServiceViewSet(viewsets.GenericViewSet):
    """The base of every app's viewsets: actions validate input with a serializer per action
    and call services and selectors; nothing reads a queryset of its own.

        class ThreadViewSet(ServiceViewSet):
            inputs = {"create": ThreadInputSerializer}
            writes = frozenset({"create"})          # counted by write_throttle as well
            write_throttle = CommentWriteThrottle
    """

    pagination_class = Pagination
    inputs: ClassVar[dict[str, type[serializers.Serializer]]] = {}
    writes: ClassVar[frozenset[str]] = frozenset()
    write_throttle: ClassVar[type[BaseThrottle] | None] = None

    def get_serializer_class(self) -> type[serializers.Serializer]:
        # The browsable API draws its forms from these too (it asks every view).
        return self.inputs.get(self.action, serializers.Serializer)

    def get_queryset(self) -> list[Any]:  # type: ignore[override]
        # Only the browsable API asks, for its filter form; actions read through selectors.
        return []

    def get_throttles(self) -> list[Any]:
        throttles = super().get_throttles()
        if self.write_throttle is not None and self.action in self.writes:
            throttles.append(self.write_throttle())
        return throttles

    def valid(self, data: Any, **context: Any) -> dict[str, Any]:
        serializer = self.get_serializer(
            data=data, context={**self.get_serializer_context(), **context}
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
