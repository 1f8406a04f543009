"""Alerts: rules as data, the evaluator's state machine, silences, inhibition, notifiers, digests."""
