"""The load-test tool: real WebSocket clients against real Daphne workers (manage.py loadtest)."""
