"""The demo pages of documents: the list (with a form to create one) and the editor.

The pages are thin: the list reads a selector and creates through the service, as REST does;
the editor page only names the document, and the browser client (realtime/client.js) does the
rest over the document's socket, with the signed-in user's session cookie.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from collab.selectors import document_for_user, documents_for_user
from collab.services import document_create
from config.errors import AppError


@login_required
@require_http_methods(["GET", "POST"])
def documents_page(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            document = document_create(owner=request.user, title=request.POST.get("title", ""))
        except AppError as failure:
            error = failure.message
        else:
            return redirect("document-page", document_id=document.pk)
    documents = documents_for_user(user=request.user).order_by("-updated_at")[:200]
    return render(request, "collab/documents.html", {"documents": documents, "error": error})


@login_required
@require_http_methods(["GET"])
def document_page(request: HttpRequest, document_id: int) -> HttpResponse:
    try:
        document, role = document_for_user(user=request.user, document_id=document_id)
    except AppError:
        raise Http404("No such document.") from None
    return render(request, "collab/editor.html", {"document": document, "role": role})
