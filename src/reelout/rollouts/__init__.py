"""Staged rollouts: plans, the decision engine, states, store and controller."""
