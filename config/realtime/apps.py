from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "config.realtime"
    label = "realtime"
    verbose_name = "Realtime layer"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out
        from psycopg_pool.base import AttemptWithBackoff

        import config.checks  # noqa: F401 -- registers the project's system checks
        from config.realtime.sessions import end_sockets_of_the_session

        user_logged_out.connect(end_sockets_of_the_session, dispatch_uid="realtime.end_session")

        # After a PostgreSQL restart every pooled connection is dead at once. psycopg_pool
        # checks them one by one as it hands them out, sleeping 1 s, 2 s, 4 s... between failed
        # checks (its reconnect backoff): a pool of 4 would take 7 s to reach a live connection,
        # long past the readiness and connect timeouts. Start that backoff at 10 ms instead; it
        # still doubles, so a database that stays down is not hammered.
        AttemptWithBackoff.INITIAL_DELAY = 0.01
