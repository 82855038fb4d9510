from django.apps import AppConfig


class CommentsConfig(AppConfig):
    name = "comments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from comments.selectors import may_see_thread
        from config.rest import MAX_ID
        from presence.rooms import ROOM_KINDS

        def may_see(user, key: str) -> bool:  # type: ignore[no-untyped-def]
            # Keys are ids (parse_room allows more): anything else is no thread.
            return (
                key.isdigit()
                and int(key) <= MAX_ID
                and may_see_thread(user=user, thread_id=int(key))
            )

        # Presence rooms "thread.<id>": who views, comments or types in a thread.
        ROOM_KINDS.register("thread", may_see)
