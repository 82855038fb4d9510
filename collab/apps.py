from django.apps import AppConfig


class CollabConfig(AppConfig):
    name = "collab"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from collab.selectors import document_role
        from presence.rooms import ROOM_KINDS

        def may_see_document(user, key: str) -> bool:  # type: ignore[no-untyped-def]
            # Keys are digits (parse_room allows more): anything else is no document.
            return key.isdigit() and document_role(user=user, document_id=int(key)) is not None

        # Presence rooms "document.<id>": members are who may see the document.
        ROOM_KINDS.register("document", may_see_document)
