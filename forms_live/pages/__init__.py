"""The demo pages of forms."""
