"""The rollout state machine: every command from every state, legal or refused in words."""

from __future__ import annotations

import itertools

import pytest

from reelout.rollouts.states import (
    CONTROLLER_COMMANDS,
    OPERATOR_COMMANDS,
    Command,
    Effect,
    Position,
    RolloutStateConflict,
    State,
    Step,
    allowed,
    transition,
)

STAGES = 4
S, C, E = State, Command, Effect

# (state, stage) -> command -> (new state, new stage, effect); anything missing is refused
LEGAL: dict[tuple[State, int], dict[Command, tuple[State, int, Effect]]] = {
    (S.pending, 0): {
        C.start: (S.running, 0, E.write_stage),
        C.abort: (S.aborted, 0, E.none),
    },
    (S.running, 1): {
        C.pause: (S.paused, 1, E.none),
        C.promote: (S.running, 2, E.write_stage),
        C.approve: (S.running, 1, E.none),
        C.abort: (S.aborted, 1, E.none),
        C.rollback: (S.rolled_back, 1, E.control_for_everyone),
        C.dismiss: (S.running, 1, E.none),
        C.advance: (S.running, 2, E.write_stage),
    },
    (S.running, 3): {  # the last stage
        C.pause: (S.paused, 3, E.none),
        C.promote: (S.completed, 3, E.treatment_for_everyone),
        C.approve: (S.running, 3, E.none),
        C.abort: (S.aborted, 3, E.none),
        C.rollback: (S.rolled_back, 3, E.control_for_everyone),
        C.dismiss: (S.running, 3, E.none),
        C.complete: (S.completed, 3, E.treatment_for_everyone),
    },
    (S.paused, 1): {
        C.resume: (S.running, 1, E.write_stage),
        C.promote: (S.running, 2, E.write_stage),
        C.approve: (S.paused, 1, E.none),
        C.abort: (S.aborted, 1, E.none),
        C.rollback: (S.rolled_back, 1, E.control_for_everyone),
        C.dismiss: (S.paused, 1, E.none),
    },
    (S.paused, 3): {
        C.resume: (S.running, 3, E.write_stage),
        C.promote: (S.completed, 3, E.treatment_for_everyone),
        C.approve: (S.paused, 3, E.none),
        C.abort: (S.aborted, 3, E.none),
        C.rollback: (S.rolled_back, 3, E.control_for_everyone),
        C.dismiss: (S.paused, 3, E.none),
    },
    (S.completed, 3): {},
    (S.rolled_back, 1): {},
    (S.aborted, 0): {},
}
CASES = list(itertools.product(LEGAL, Command))


@pytest.mark.parametrize(("where", "command"), CASES, ids=[f"{w[0]}{w[1]}-{c}" for w, c in CASES])
def test_every_command_from_every_state(where: tuple[State, int], command: Command) -> None:
    position = Position(where[0], where[1], STAGES)
    expected = LEGAL[where].get(command)
    if expected is None:
        with pytest.raises(RolloutStateConflict) as refused:
            transition(position, command)
        assert refused.value.code == "ROLLOUT_STATE_CONFLICT"
        assert refused.value.status == 409
        assert where[0].value in refused.value.message
        assert command.value in refused.value.message
        assert refused.value.details == {
            "state": where[0].value,
            "allowed": [c.value for c in LEGAL[where]],
        }
        return
    state, stage, effect = expected
    assert transition(position, command) == step(state, stage, effect)


def step(state: State, stage: int, effect: Effect) -> Step:
    return Step(Position(state, stage, STAGES), effect)


def test_the_refusal_names_the_allowed_commands() -> None:
    with pytest.raises(RolloutStateConflict) as refused:
        transition(Position(State.paused, 1, STAGES), Command.pause)
    assert refused.value.message == (
        "the rollout is paused: pause is not allowed; it allows resume, promote, approve, "
        "abort, rollback, dismiss"
    )
    with pytest.raises(RolloutStateConflict) as final:
        transition(Position(State.completed, 3, STAGES), Command.rollback)
    assert final.value.message.endswith("it is final and allows no command")
    with pytest.raises(RolloutStateConflict) as last:
        transition(Position(State.running, 3, STAGES), Command.advance)
    assert "running at stage 4 of 4" in last.value.message


def test_allowed_lists_what_transition_accepts() -> None:
    for (state, stage), legal in LEGAL.items():
        assert allowed(Position(state, stage, STAGES)) == list(legal)


def test_a_one_stage_plan_completes_from_its_only_stage() -> None:
    started = transition(Position(State.pending, 0, 1), Command.start).position
    assert started == Position(State.running, 0, 1)
    assert Command.advance not in allowed(started)
    assert transition(started, Command.complete).position.state is State.completed


def test_who_issues_which_command() -> None:
    assert set(Command) == OPERATOR_COMMANDS | CONTROLLER_COMMANDS
    assert {Command.pause, Command.rollback} == OPERATOR_COMMANDS & CONTROLLER_COMMANDS
