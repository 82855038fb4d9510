"""The demo pages of a form's respondents and builders: filling it, and its live dashboard.

Both are thin: they check who may open them with the same selectors and rules as the form's
sockets, name the form, and leave the rest to the browser modules on the sockets
(``forms_live/static/forms_live/fill.js`` on ``/ws/forms/<id>/fill/``, ``dashboard.js`` on
``/ws/forms/<id>/dashboard/``), with the signed-in user's session cookie.

- fill: any signed-in user, on a published form; a draft or closed form is 404, as the
  socket closes it with 4404;
- dashboard: owners and editors; a viewer is 403 (the socket's 4403, and REST's 403 on the
  analytics), anyone else 404, as for a form that does not exist.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from config.errors import AppError, ErrorCode
from forms_live.permissions import can_build
from forms_live.selectors import form_for_user, form_to_fill


@login_required
@require_http_methods(["GET"])
def form_fill_page(request: HttpRequest, form_id: int) -> HttpResponse:
    try:
        form = form_to_fill(form_id=form_id)
    except AppError:
        raise Http404("No such form.") from None
    return render(request, "forms_live/fill.html", {"form": form})


@login_required
@require_http_methods(["GET"])
def form_dashboard_page(request: HttpRequest, form_id: int) -> HttpResponse:
    try:
        form, role = form_for_user(user=request.user, form_id=form_id, need=can_build)
    except AppError as error:
        if error.code == ErrorCode.FORBIDDEN:
            raise PermissionDenied("The dashboard is for the form's owners and editors.") from None
        raise Http404("No such form.") from None
    return render(request, "forms_live/dashboard.html", {"form": form, "role": role})
