"""The audit trail: who changed keys, webhooks and videos, when, why and how (a JSON Patch)."""
