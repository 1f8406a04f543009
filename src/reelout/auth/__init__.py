"""API keys with scopes (admin, client per environment) and the signed upload tokens."""
