"""Documents in the admin. Text and version change only through ops, so they are read-only here,
and the op log cannot be edited at all: every client and every replay depends on it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from collab.models import Document, DocumentMember, DocumentVersion, Operation, Role
from config.admin import ReadOnlyAdminMixin


class MemberInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if self.instance.pk is None:
            return  # a new document's owner is made a member when it is saved
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if not any(data.get("role") == Role.OWNER for data in kept):
            raise ValidationError("A document must keep at least one owner.")


class DocumentMemberInline(admin.TabularInline):
    model = DocumentMember
    formset = MemberInlineFormSet
    raw_id_fields = ("user",)
    readonly_fields = ("created_at",)
    extra = 0


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "version", "updated_at")
    list_select_related = ("owner",)
    search_fields = ("title",)
    raw_id_fields = ("owner",)
    readonly_fields = ("version", "content", "created_at", "updated_at")
    inlines = [DocumentMemberInline]

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        # The text may be a megabyte per row: the list never loads it, the change form once.
        return super().get_queryset(request).defer("content")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not change:
            # As document_create does: otherwise not even its owner could open it.
            DocumentMember.objects.update_or_create(
                document=form.instance, user=form.instance.owner, defaults={"role": Role.OWNER}
            )

    def get_deleted_objects(self, objs, request):  # type: ignore[no-untyped-def]
        # Ops cannot be deleted one by one, but they go with their document.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(Operation._meta.verbose_name)
        return deleted, counts, perms_needed, protected


@admin.register(DocumentMember)
class DocumentMemberAdmin(admin.ModelAdmin):
    list_display = ("document", "user", "role", "created_at")
    list_filter = ("role",)
    list_select_related = ("document", "user")
    search_fields = ("document__title", "user__username")
    raw_id_fields = ("document", "user")
    readonly_fields = ("created_at",)

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).defer("document__content")


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("document", "version", "author", "client_id", "seq", "created_at")
    list_select_related = ("document", "author")
    search_fields = ("client_id",)

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).defer("document__content")


@admin.register(DocumentVersion)
class DocumentVersionAdmin(admin.ModelAdmin):
    list_display = ("document", "version", "name", "created_by", "created_at")
    list_select_related = ("document", "created_by")
    search_fields = ("name", "document__title")
    # Reads at a version start from these snapshots: only the label may change.
    readonly_fields = ("document", "version", "content", "created_by", "created_at")

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).defer("content", "document__content")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
