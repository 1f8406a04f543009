"""Staged rollouts: plans, the decision each tick makes, and the controller that acts on it."""
