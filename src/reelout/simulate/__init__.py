"""Rollout rehearsals: synthetic users driven through a real server on an accelerated clock."""
