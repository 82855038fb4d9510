"""The demo pages of form builders: the list of one's forms (with a form to create one) and the
live builder of a form.

Thin, as collab/pages.py: the list reads the selector the REST list reads and creates through
the service REST creates with; the builder page only names the form and the user's role, and
forms_live/static/forms_live/builder.js does the rest over ``/ws/forms/<id>/edit/`` with the
signed-in user's session cookie. Who may see what is the app's rule: members only, others 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from config.errors import AppError
from forms_live.models import ConflictPolicy, FieldType, FormStatus
from forms_live.permissions import can_build, can_manage
from forms_live.selectors import form_for_user, forms_for_user
from forms_live.services import form_create

MAX_LISTED = 200


@login_required
@require_http_methods(["GET", "POST"])
def forms_page(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            form = form_create(
                owner=request.user,
                title=request.POST.get("title", ""),
                conflict_policy=request.POST.get("conflict_policy", ConflictPolicy.MERGE),
            )
        except AppError as failure:
            error = failure.message
        else:
            return redirect("form-builder-page", form_id=form.pk)
    forms = forms_for_user(user=request.user)[:MAX_LISTED]
    rows = [
        {
            "form": form,
            "role": form.role,
            "fillable": form.status == FormStatus.PUBLISHED,
            "dashboard": can_build(form.role),
        }
        for form in forms
    ]
    context = {
        "rows": rows,
        "error": error,
        "policies": ConflictPolicy.choices,
        "title": request.POST.get("title", "") if error else "",
    }
    return render(request, "forms_live/forms.html", context)


@login_required
@require_http_methods(["GET"])
def form_builder_page(request: HttpRequest, form_id: int) -> HttpResponse:
    try:
        form, role = form_for_user(user=request.user, form_id=form_id)
    except AppError:
        raise Http404("No such form.") from None
    context = {
        "form": form,
        "role": role,
        "can_build": can_build(role),
        "can_manage": can_manage(role),
        "statuses": FormStatus.choices,
        "policies": ConflictPolicy.choices,
        "field_types": FieldType.choices,
    }
    return render(request, "forms_live/builder.html", context)
