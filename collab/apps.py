from django.apps import AppConfig


class CollabConfig(AppConfig):
    name = "collab"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from collab.selectors import anchors_moved, document_role, document_roles
        from comments.targets import TARGET_KINDS, TargetKind
        from presence.rooms import ROOM_KINDS

        def may_see_document(user, key: str) -> bool:  # type: ignore[no-untyped-def]
            # Keys are digits (parse_room allows more): anything else is no document.
            return key.isdigit() and document_role(user=user, document_id=int(key)) is not None

        # Presence rooms "document.<id>": members are who may see the document.
        ROOM_KINDS.register("document", may_see_document)
        # Comment threads on documents, anchored to ranges of the text that move with edits.
        TARGET_KINDS.register(
            TargetKind("document", roles=document_roles, move_anchors=anchors_moved)
        )
