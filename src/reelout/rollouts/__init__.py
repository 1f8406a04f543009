"""Staged rollouts: plans, the decision each tick makes, the state machine, the store and the
controller that acts on them."""
