"""Reelout: a self-hosted video platform with progressive delivery built in."""

__version__ = "0.1.0"
