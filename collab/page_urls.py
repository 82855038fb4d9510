from django.urls import path

import config.rest  # noqa: F401  (registers the bigid route converter)
from collab.pages import document_page, documents_page

urlpatterns = [
    path("", documents_page, name="documents-page"),
    path("<bigid:document_id>/", document_page, name="document-page"),
]
