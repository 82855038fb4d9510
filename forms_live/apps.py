from django.apps import AppConfig


class FormsLiveConfig(AppConfig):
    name = "forms_live"
    default_auto_field = "django.db.models.BigAutoField"
