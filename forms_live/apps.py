from django.apps import AppConfig


class FormsLiveConfig(AppConfig):
    name = "forms_live"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from comments.targets import TARGET_KINDS, TargetKind
        from forms_live.selectors import form_role, form_roles
        from presence.rooms import ROOM_KINDS

        def may_see_form(user, key: str) -> bool:  # type: ignore[no-untyped-def]
            # Keys are ids (parse_room allows more): anything else is no form.
            return (
                key.isdigit()
                and len(key) < 19
                and form_role(user=user, form_id=int(key)) is not None
            )

        # Presence rooms "form.<id>": who builds a form, and which field each one edits.
        ROOM_KINDS.register("form", may_see_form)
        # Comment threads on a form, and on one of its fields (the thread's target_key).
        TARGET_KINDS.register(TargetKind("form", roles=form_roles))
        TARGET_KINDS.register(TargetKind("form_field", roles=form_roles))
