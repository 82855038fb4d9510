"""HTTP routes: admin, the REST API composed from each app, schema and docs, health, metrics."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from monitoring.views import healthz, metrics, readyz

api_patterns = [
    path("realtime/", include("config.realtime.urls")),
    path("collab/", include("collab.urls")),
    path("comments/", include("comments.urls")),
    path("forms/", include("forms_live.urls")),
    path("presence/", include("presence.urls")),
    path("monitoring/", include("monitoring.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/documents/", permanent=False)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("documents/", include("collab.page_urls")),
    path("forms/", include("forms_live.page_urls")),
    path("notifications/", include("comments.page_urls")),
    path("staff/", include("monitoring.page_urls")),
    path(settings.ADMIN_URL, admin.site.urls),  # "admin/" unless DJANGO_ADMIN_URL moves it
    path("api/", include(api_patterns)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
]

handler404 = "config.api.not_found"
