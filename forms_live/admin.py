"""Forms in the admin: everything visible; members managed by staff; submissions moved on
through ``submission_set_status``; nothing else is written here.

A form's title, status and policy, its fields, changes and conflicts all carry revisions that
builders resume from, and every change must reach the builders' sockets as an event: so those
are changed over REST and WebSocket (the services), never here. Members carry no revision: an
operator may add, change and remove them (to hand over a form whose owner left, say), as long
as the form keeps an owner. Forms are not deleted here: ``form_delete`` takes the form's comment
threads with it, and is an owner's act.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from config.admin import ReadOnlyAdminMixin, ViewOnlyInline
from config.errors import AppError, ErrorCode
from forms_live.models import (
    FieldConflict,
    Form,
    FormChange,
    FormField,
    FormMember,
    Role,
    Submission,
    SubmissionStatus,
)
from forms_live.services import submission_set_status

# --- forms ---------------------------------------------------------------------------------------


class MembersFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        owners = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("role") == Role.OWNER
        ]
        if not owners:
            raise forms.ValidationError("A form must keep at least one owner.")


class MemberInline(admin.TabularInline):
    model = FormMember
    formset = MembersFormSet
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[FormMember]:
        return super().get_queryset(request).select_related("user")


class FieldInline(ViewOnlyInline):
    model = FormField
    fields = readonly_fields = ("position", "key", "type", "label", "required")
    show_change_link = True


@admin.register(Form)
class FormAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "title",
        "owner",
        "status",
        "conflict_policy",
        "anonymous",
        "revision",
        "member_count",
        "views",
        "updated_at",
    )
    list_filter = ("status", "conflict_policy", "anonymous")
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username")
    # All of it read-only: a form's own properties change through form_change, with a
    # revision and an event. The page is editable only for its members inline.
    fields = readonly_fields = (
        "title",
        "owner",
        "status",
        "conflict_policy",
        "anonymous",
        "revision",
        "views",
        "created_at",
        "updated_at",
    )
    inlines = [MemberInline, FieldInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Form]:
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, form: Form) -> int:
        return form.member_count  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # form_create: with its owner as the first member

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # form_delete: an owner's, with the form's comment threads

    def save_formset(self, request, form, formset, change):  # type: ignore[no-untyped-def]
        super().save_formset(request, form, formset, change)
        # As member_set does when the named owner steps down: name another (the formset kept
        # one at least).
        saved = form.instance
        owners = saved.members.filter(role=Role.OWNER).order_by("id")
        if not owners.filter(user_id=saved.owner_id).exists():
            saved.owner_id = owners.values_list("user_id", flat=True).first()
            saved.save(update_fields=["owner", "updated_at"])


# --- read-only records ---------------------------------------------------------------------------


@admin.register(FormField)
class FormFieldAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "form", "position", "key", "type", "label", "required")
    list_filter = ("type", "required")
    list_select_related = ("form",)
    search_fields = ("key", "label", "form__title")


@admin.register(FormChange)
class FormChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("form", "revision", "type", "field_key", "author", "created_at")
    list_filter = ("type",)
    list_select_related = ("form", "author")
    search_fields = ("form__id__exact", "field_key", "author__username")
    readonly_fields = ("created_at",)


@admin.register(FieldConflict)
class FieldConflictAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "form",
        "field",
        "prop",
        "status",
        "current_by",
        "proposed_by",
        "resolution",
        "created_at",
    )
    list_filter = ("status", "prop")
    list_select_related = ("form", "field", "current_by", "proposed_by")
    search_fields = ("form__title", "field__key")
    readonly_fields = ("created_at",)


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "form",
        "respondent",
        "status",
        "progress",
        "device_type",
        "started_at",
        "submitted_at",
        "completed_at",
    )
    list_filter = ("status", ("form", admin.RelatedOnlyFieldListFilter), "device_type")
    list_select_related = ("form", "respondent")
    search_fields = ("token", "respondent__username", "form__title")
    readonly_fields = ("started_at", "updated_at")
    actions = ["mark_completed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The change permission is the permission to move submissions on (the action); a
        # submission's page is view-only: respondents' answers are never rewritten.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Mark completed", permissions=["change"])
    def mark_completed(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        done = not_builder = not_sent = 0
        # One transaction per submission, as the service owns it: each change is broadcast on
        # commit to the respondent and the dashboards.
        for submission_id, form_id in queryset.order_by("pk").values_list("pk", "form_id"):
            try:
                submission_set_status(
                    user=request.user,
                    form_id=form_id,
                    submission_id=submission_id,
                    status=SubmissionStatus.COMPLETED,
                )
            except AppError as error:
                if error.code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN):
                    not_builder += 1  # or gone since the list was shown
                elif error.code == ErrorCode.CONFLICT:
                    not_sent += 1
                else:
                    raise
                continue
            done += 1
        self.message_user(request, f"{done} marked completed.", messages.SUCCESS)
        if not_builder:
            self.message_user(
                request,
                f"{not_builder} skipped: only an owner or editor of their form may move them on.",
                messages.WARNING,
            )
        if not_sent:
            self.message_user(request, f"{not_sent} skipped: not submitted yet.", messages.WARNING)
