"""Notification channels besides chat: email and users' webhooks."""
