from django.urls import path

import config.rest  # noqa: F401  (registers the bigid route converter)
from forms_live.pages.builder import form_builder_page, forms_page
from forms_live.pages.fill import form_dashboard_page, form_fill_page

urlpatterns = [
    path("", forms_page, name="forms-page"),
    path("<bigid:form_id>/edit/", form_builder_page, name="form-builder-page"),
    path("<bigid:form_id>/fill/", form_fill_page, name="form-fill-page"),
    path("<bigid:form_id>/dashboard/", form_dashboard_page, name="form-dashboard-page"),
]
