"""Notifications: the outbox worker, e-mail and webhooks, delivered at least once."""
