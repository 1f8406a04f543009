"""Outgoing webhooks: endpoints, signed event deliveries retried through the jobs table, their log."""
