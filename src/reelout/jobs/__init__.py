"""Durable background jobs: a jobs table with leases, retries and periodic schedules, and the worker."""
