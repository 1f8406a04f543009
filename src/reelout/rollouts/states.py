"""A rollout's state machine (pure): which command each state allows, where it leads and what it
does to the flag.

    pending --start--> running(stage 0) --advance--> running(stage k+1) --complete--> completed
    running --pause--> paused --resume--> running
    running | paused --promote--> running(stage k+1), or completed from the last stage
    running | paused --rollback--> rolled_back        pending | running | paused --abort--> aborted
    running | paused --approve | dismiss--> the same state and stage (recorded in the log)

Start, advance and promote write the new stage's arms split; resume writes the current stage's
again (a resume after a manual edit of the flag takes the flag back); rollback gives everyone the
control, completion (complete, or advance and promote from the last stage) the treatment, both
dropping the rollout's own variants; the others leave the flag alone (an abort leaves it as it
is, for a person to decide).
`advance`, `complete` and the controller's own `pause` and `rollback` (alert veto, manual edit of
the flag, proven harm) are the controller's; the rest are the operator's. Completed, rolled back
and aborted rollouts are final: every command is refused with 409 `ROLLOUT_STATE_CONFLICT`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reelout.errors import Conflict


class State(StrEnum):
    pending = "pending"
    running = "running"
    paused = "paused"
    completed = "completed"
    rolled_back = "rolled_back"
    aborted = "aborted"


FINAL = frozenset({State.completed, State.rolled_back, State.aborted})


class Command(StrEnum):
    start = "start"
    pause = "pause"
    resume = "resume"
    promote = "promote"
    approve = "approve"
    abort = "abort"
    rollback = "rollback"
    dismiss = "dismiss"
    advance = "advance"
    complete = "complete"


OPERATOR_COMMANDS = frozenset(
    {
        Command.start,
        Command.pause,
        Command.resume,
        Command.promote,
        Command.approve,
        Command.abort,
        Command.rollback,
        Command.dismiss,
    }
)
CONTROLLER_COMMANDS = frozenset(
    {Command.advance, Command.complete, Command.pause, Command.rollback}
)


class Effect(StrEnum):
    """What a transition does to the flag."""

    none = "none"
    write_stage = "write_stage"  # the arms split of the (new) stage's percentage
    control_for_everyone = "control_for_everyone"  # the rollback
    treatment_for_everyone = "treatment_for_everyone"  # the completion


@dataclass(frozen=True)
class Position:
    """Where a rollout is: its state, its stage index and how many stages its plan has."""

    state: State
    stage: int
    stages: int

    @property
    def last_stage(self) -> bool:
        return self.stage >= self.stages - 1


@dataclass(frozen=True)
class Step:
    """A legal command's outcome: the new position and the flag write it needs."""

    position: Position
    effect: Effect


_LIVE = (State.running, State.paused)
_ALLOWED: dict[Command, tuple[State, ...]] = {
    Command.start: (State.pending,),
    Command.pause: (State.running,),
    Command.resume: (State.paused,),
    Command.promote: _LIVE,
    Command.approve: _LIVE,
    Command.abort: (State.pending, *_LIVE),
    Command.rollback: _LIVE,
    Command.dismiss: _LIVE,
    Command.advance: (State.running,),
    Command.complete: (State.running,),
}


class RolloutStateConflict(Conflict):
    code = "ROLLOUT_STATE_CONFLICT"


def allowed(position: Position) -> list[Command]:
    """The commands `position` allows, in the order of `Command`."""
    return [command for command in Command if _legal(position, command)]


def _legal(position: Position, command: Command) -> bool:
    if position.state not in _ALLOWED[command]:
        return False
    if command is Command.advance:
        return not position.last_stage
    if command is Command.complete:
        return position.last_stage
    return True


def transition(position: Position, command: Command) -> Step:
    """The step `command` takes from `position`; RolloutStateConflict when it is not allowed."""
    if not _legal(position, command):
        raise _conflict(position, command)
    state, stage = position.state, position.stage
    if command is Command.start:
        return Step(Position(State.running, 0, position.stages), Effect.write_stage)
    if command in (Command.advance, Command.promote):
        if position.last_stage:
            return Step(
                Position(State.completed, stage, position.stages), Effect.treatment_for_everyone
            )
        return Step(Position(State.running, stage + 1, position.stages), Effect.write_stage)
    if command is Command.complete:
        return Step(
            Position(State.completed, stage, position.stages), Effect.treatment_for_everyone
        )
    if command is Command.resume:
        return Step(Position(State.running, stage, position.stages), Effect.write_stage)
    if command is Command.pause:
        return Step(Position(State.paused, stage, position.stages), Effect.none)
    if command is Command.rollback:
        return Step(
            Position(State.rolled_back, stage, position.stages), Effect.control_for_everyone
        )
    if command is Command.abort:
        return Step(Position(State.aborted, stage, position.stages), Effect.none)
    return Step(Position(state, stage, position.stages), Effect.none)  # approve, dismiss


def _conflict(position: Position, command: Command) -> RolloutStateConflict:
    legal = allowed(position)
    where = position.state.value
    if position.state is State.running:
        where += f" at stage {position.stage + 1} of {position.stages}"
    allows = f"it allows {', '.join(legal)}" if legal else "it is final and allows no command"
    return RolloutStateConflict(
        f"the rollout is {where}: {command.value} is not allowed; {allows}",
        details={"state": position.state.value, "allowed": [c.value for c in legal]},
    )
