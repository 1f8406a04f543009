"""The rollout store: create from a plan, commands with their flag writes and log rows, the
controller's decisions, manual edits of the flag, reading rollouts and their log (real SQLite,
and PostgreSQL where marked)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.clock import ManualClock
from reelout.errors import ReeloutError
from reelout.flags import evaluate, parse_flag_set
from reelout.flags.admin import service as flags
from reelout.rollouts import service
from reelout.rollouts.decide import ArmData
from reelout.rollouts.models import Rollout
from reelout.rollouts.plan import stored_plan
from reelout.rollouts.service import CommandArgs, RolloutFilter
from reelout.rollouts.states import Command
from reelout.runtime import Runtime
from tests.rollouts.conftest import ENV, FLAG, FLAGS, PLAN
from tests.support.settings import make_settings, start_runtime
from tests.support.ticks import decide_on

ALICE = Principal(key_id="k_alice", name="alice", scope=Scope.admin, environment=None)
BOB = Principal(key_id="k_bob", name="bob", scope=Scope.admin, environment=None)


def make_rt(tmp_path: Path, clock: ManualClock, database_url: str | None = None) -> Runtime:
    extra = {"database_url": database_url} if database_url else {}
    rt = start_runtime(make_settings(tmp_path, seed_flags=False, **extra), clock)
    with rt.db.session() as session:
        body = json.dumps(FLAGS).encode()
        flags.put_flag_set(session, clock, ENV, body, flags.Edit(ALICE, "the flags"))
    return rt


@pytest.fixture
def rt(tmp_path: Path, clock: ManualClock) -> Iterator[Runtime]:
    runtime = make_rt(tmp_path, clock)
    yield runtime
    runtime.db.dispose()


Act = Callable[..., Any]


@pytest.fixture
def act(rt: Runtime, clock: ManualClock) -> Act:
    """`act(fn, *args, **kwargs)`: `fn(session, clock, *args, **kwargs)` in one unit of work."""

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with rt.db.session() as session:
            return fn(session, clock, *args, **kwargs)

    return run


def create(act: Act, plan: Mapping[str, Any] = PLAN, **kwargs: Any) -> int:
    made = act(service.create, plan, ALICE, environments=["preview", ENV], **kwargs)
    return int(made.id)


def do(act: Act, rollout: int, command: Command, who: Principal = ALICE, **args: Any) -> Any:
    return act(service.command, rollout, CommandArgs(command, **args), who)


def served(rt: Runtime, units: int = 400) -> dict[str, int]:
    """variant -> how many of `units` targeting keys the flag serves it now."""
    with rt.db.read() as session:
        document = flags.current(session, ENV).document()
    compiled = parse_flag_set(document)
    counts: dict[str, int] = {}
    for n in range(units):
        got = evaluate(
            compiled, FLAG, {"targetingKey": f"u{n}"}, default=None, expected_type=bool, now=0
        )
        counts[str(got.variant)] = counts.get(str(got.variant), 0) + 1
    return counts


def targeting(rt: Runtime) -> Any:
    with rt.db.read() as session:
        return flags.get_flag(session, ENV, FLAG)[1].get("targeting")


def log(rt: Runtime, rollout: int, **kwargs: Any) -> list[tuple[str, str, str, str | None]]:
    with rt.db.read() as session:
        page = service.log_page(session, rollout, limit=500, **kwargs)
    return [(e.kind, e.who, e.what, e.reason) for e in page.entries]


def split(percent: int, rollout: int) -> dict[str, Any]:
    """The arms rollout `rollout` writes for `percent`, under its own keys."""
    return {
        "fractional": [
            [f"on~r{rollout}", percent],
            ["off~excluded", max(0, 100 - 2 * percent)],
            [f"off~r{rollout}", min(percent, 100 - percent)],
        ]
    }


# ---- create ------------------------------------------------------------------------------------


def test_create_stores_the_plan_as_given_and_writes_no_flag(rt: Runtime, act: Act) -> None:
    rollout = create(act)
    with rt.db.read() as session:
        got = service.get(session, rollout)
        assert flags.current(session, ENV).revision == 1
    assert got.plan == PLAN and (got.flag, got.environment) == (FLAG, ENV)
    assert (got.state, got.stage, got.percent, got.created_by) == ("pending", 0, 10, "alice")
    assert got.allowed == ["start", "abort"] and got.version == 1
    assert log(rt, rollout) == [("command", "alice", "create", None)]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda p: p["rollout"].update(environment="staging"), "UNKNOWN_ENVIRONMENT"),
        (lambda p: p["rollout"].update(flag="nope"), "FLAG_NOT_FOUND"),
        (lambda p: p["rollout"].update(treatment="maybe"), "UNKNOWN_VARIANT"),
        (lambda p: p["rollout"]["stages"][1].update(percent=5), "INVALID_PLAN"),
        (lambda p: p["rollout"].pop("control"), "INVALID_PLAN"),
        (lambda p: p["rollout"]["guardrails"][0].update(metric="nope"), "INVALID_PLAN"),
    ],
)
def test_create_refuses_a_plan_the_flag_cannot_take(
    rt: Runtime, act: Act, change: Callable[[dict[str, Any]], None], code: str
) -> None:
    plan = copy.deepcopy(PLAN)
    change(plan)
    with pytest.raises(ReeloutError) as refused:
        create(act, plan)
    assert refused.value.code == code
    with rt.db.read() as session:
        assert service.list_rollouts(session).rollouts == []


def test_an_invalid_plan_lists_every_fault() -> None:
    with pytest.raises(ReeloutError) as refused:
        stored_plan({"rollout": {"flag": "", "stages": [{"percent": 50}, {"percent": 20}]}})
    assert refused.value.code == "INVALID_PLAN"
    assert refused.value.details == {
        "errors": [
            "flag: String should have at least 1 character",
            "environment: Field required",
            "treatment: Field required",
            "control: Field required",
            "stages[0].min_duration: Field required",
            "stages[1].min_duration: Field required",
            "stages[1].percent: 20 is not above the stage before's 50 (percents rise strictly)",
        ]
    }


def test_a_plan_is_stored_as_given_and_read_back_once(act: Act, rt: Runtime) -> None:
    with_notify = {"rollout": {**PLAN["rollout"], "notify": ["slack:#video"]}}
    rollout = create(act, with_notify)
    with rt.db.read() as session:
        stored = service.get(session, rollout).plan
    assert stored == with_notify
    plan = stored_plan(stored)
    assert plan.notify == ["slack:#video"] and plan.percents == (10, 25, 50, 100)
    assert stored_plan(copy.deepcopy(with_notify)) is plan, "read again from the cache"


def test_one_unfinished_rollout_per_flag(act: Act) -> None:
    first = create(act)
    with pytest.raises(ReeloutError) as refused:
        create(act)
    assert (refused.value.code, refused.value.details) == ("ROLLOUT_EXISTS", {"rollout": first})
    do(act, first, Command.abort)
    create(act)  # an aborted rollout is finished


# ---- commands and decisions --------------------------------------------------------------------


def record(act: Act, rollout: int, decision: str, stage: int, **kwargs: Any) -> Any:
    given = {"decision": decision, "stage": stage, "reasons": [f"{decision} because"]}
    return act(
        service.record_decision, rollout, decision, [f"{decision} because"], given, stage=stage,
        **kwargs,
    )  # fmt: skip


def test_a_rollout_from_start_to_completion(rt: Runtime, act: Act, clock: ManualClock) -> None:
    rollout = create(act)
    started = do(act, rollout, Command.start)
    assert (started.state, started.stage, started.started_at) == ("running", 0, clock.now())
    assert targeting(rt) == split(10, rollout)
    counts = served(rt)
    assert set(counts) == {f"on~r{rollout}", f"off~r{rollout}", "off~excluded"}
    assert counts["off~excluded"] > 250

    clock.advance(3600)
    held = record(act, rollout, "hold", 0)
    assert (
        held.applied
        and held.rollout.stage == 0
        and held.rollout.last_decision["decision"] == "hold"
    )
    until = clock.now() + timedelta(days=1)
    assert record(act, rollout, "extend", 0, extend_until=until).rollout.extended_until == until
    clock.advance(7200)
    advanced = record(act, rollout, "advance", 0)
    assert (advanced.rollout.stage, advanced.rollout.percent) == (1, 25)
    assert advanced.rollout.stage_started_at == clock.now()
    assert advanced.rollout.extended_until is None, "a new stage starts without an extension"
    assert targeting(rt) == split(25, rollout)
    stale = record(act, rollout, "advance", 0)  # another worker's tick for the old stage
    assert not stale.applied and stale.rollout.stage == 1
    for stage in (1, 2):
        record(act, rollout, "advance", stage)
    assert targeting(rt) == split(100, rollout) and served(rt) == {f"on~r{rollout}": 400}
    done = record(act, rollout, "advance", 3)
    assert (done.rollout.state, done.rollout.ended_at, done.rollout.allowed) == (
        "completed",
        clock.now(),
        [],
    )
    assert served(rt) == {"on": 400} and targeting(rt) is None, "the plain treatment for all"
    with rt.db.read() as session:
        variants = flags.get_flag(session, ENV, FLAG)[1]["variants"]
    assert set(variants) == {"on", "off"}, "the rollout's own variants are gone"
    with pytest.raises(ReeloutError) as refused:
        do(act, rollout, Command.rollback, reason="too late")
    assert refused.value.code == "ROLLOUT_STATE_CONFLICT"
    assert "completed" in refused.value.message

    entries = log(rt, rollout)
    assert [(kind, what) for kind, _, what, _ in entries] == [
        ("command", "create"),
        ("command", "start"),
        ("decision", "hold"),
        ("decision", "extend"),
        ("decision", "advance"),
        ("command", "advance"),
        ("decision", "advance"),
        ("command", "advance"),
        ("decision", "advance"),
        ("command", "advance"),
        ("decision", "advance"),
        ("command", "complete"),
    ]
    assert {who for kind, who, _, _ in entries if kind == "decision"} == {"rollout-controller"}
    with rt.db.read() as session:
        audit = flags.list_audit(session, flags.AuditFilter(flag=FLAG)).entries
    assert [(e.actor, e.action.value) for e in audit] == [
        ("rollout-controller", "rollout_complete"),
        ("rollout-controller", "rollout_arms"),
        ("rollout-controller", "rollout_arms"),
        ("rollout-controller", "rollout_arms"),
        ("alice", "rollout_arms"),
        ("alice", "put"),
    ]
    assert audit[4].reason == f"rollout {rollout}: stage 1 of 4, 10%"
    assert audit[1].reason == f"rollout {rollout}: stage 4 of 4, 100%: advance because"
    assert audit[0].reason == f"rollout {rollout}: completed, 'on' for everyone: advance because"


def test_a_rollback_gives_everyone_the_control(rt: Runtime, act: Act) -> None:
    rollout = create(act)
    do(act, rollout, Command.start)
    rolled = do(act, rollout, Command.rollback, BOB, reason="support tickets")
    assert rolled.state == "rolled_back" and rolled.ended_at is not None
    assert served(rt) == {"off": 400} and targeting(rt) is None
    with rt.db.read() as session:
        latest = flags.latest_audit_of(session, ENV, FLAG)
        (entry,) = service.log_page(session, rollout, kind="command", cursor=None).entries[-1:]
    assert latest is not None and (latest.actor, latest.action) == ("bob", "rollback")
    assert latest.reason == f"rollout {rollout}: rolled back to 'off' for everyone: support tickets"
    assert (entry.who, entry.what, entry.reason) == ("bob", "rollback", "support tickets")
    assert entry.body == {
        "from": {"state": "running", "stage": 0},
        "to": {"state": "rolled_back", "stage": 0},
        "flag_revision": latest.revision,
    }


def variants(rt: Runtime) -> set[str]:
    with rt.db.read() as session:
        return set(flags.get_flag(session, ENV, FLAG)[1]["variants"])


def test_a_second_rollout_after_a_rollback_serves_keys_of_its_own(rt: Runtime, act: Act) -> None:
    """Its treatment's exposures start inside it, whoever the first one served `on`."""
    first = create(act)
    do(act, first, Command.start)
    do(act, first, Command.rollback, reason="support tickets")
    assert variants(rt) == {"on", "off"}, "the first rollout's own variants went with it"
    second = create(act)
    started = do(act, second, Command.start)
    assert (started.served_as.treatment, started.served_as.control) == (
        f"on~r{second}", f"off~r{second}")  # fmt: skip
    assert variants(rt) == {"on", "off", "off~excluded", f"on~r{second}", f"off~r{second}"}
    assert targeting(rt) == split(10, second)


def test_a_rollout_made_before_the_arms_had_keys_of_their_own_serves_the_plain_names(
    rt: Runtime, act: Act
) -> None:
    """As migration 0021 leaves one that is running: it goes on serving and reading `on` and
    `off`, and its end drops only `off~excluded`."""
    rollout = create(act)
    with rt.db.session() as session:
        session.get(Rollout, rollout).own_arm_keys = False  # type: ignore[union-attr]
    started = do(act, rollout, Command.start)
    assert (started.served_as.treatment, started.served_as.control) == ("on", "off")
    assert targeting(rt) == {"fractional": [["on", 10], ["off~excluded", 80], ["off", 10]]}
    do(act, rollout, Command.rollback)
    assert variants(rt) == {"on", "off"} and served(rt) == {"off": 400}


def test_the_controllers_rollback_and_pause(rt: Runtime, act: Act) -> None:
    rollout = create(act)
    do(act, rollout, Command.start)
    paused = record(act, rollout, "pause", 0)
    assert paused.rollout.state == "paused"
    assert not record(act, rollout, "rollback", 0).applied, "a paused rollout takes no ticks"
    do(act, rollout, Command.resume)
    rolled = record(act, rollout, "rollback", 0)
    assert rolled.rollout.state == "rolled_back" and served(rt) == {"off": 400}


def test_operator_commands_check_what_they_carry(rt: Runtime, act: Act) -> None:
    rollout = create(act)
    do(act, rollout, Command.start)
    refusals = [
        (dict(command=Command.promote), "REASON_REQUIRED"),
        (dict(command=Command.promote, reason="  "), "REASON_REQUIRED"),
        (dict(command=Command.dismiss, metric="error_rate"), "REASON_REQUIRED"),
        (dict(command=Command.dismiss, metric="nope", reason="noisy"), "UNKNOWN_GUARDRAIL"),
        (dict(command=Command.approve, stage=9), "INVALID_STAGE"),
        (dict(command=Command.advance), "NOT_AN_OPERATOR_COMMAND"),
        (dict(command=Command.start), "ROLLOUT_STATE_CONFLICT"),
    ]
    for args, code in refusals:
        with pytest.raises(ReeloutError) as refused:
            act(service.command, rollout, CommandArgs(**args), ALICE)
        assert refused.value.code == code, args
    assert len(log(rt, rollout)) == 2, "refused commands leave no trace"

    approved = do(act, rollout, Command.approve)
    approved = do(act, rollout, Command.approve, stage=3)
    dismissed = do(act, rollout, Command.dismiss, metric="crash_rate", reason="known crash, fixed")
    assert approved.approvals == [1, 3]
    assert dismissed.dismissed == {"crash_rate": "known crash, fixed"}
    promoted = do(act, rollout, Command.promote, reason="the canary is fine, ship")
    assert (promoted.stage, promoted.state) == (1, "running") and targeting(rt) == split(
        25, rollout
    )
    with rt.db.read() as session:
        page = service.log_page(session, rollout, kind="command")
    assert [e.body.get("approved_stage") for e in page.entries if e.what == "approve"] == [1, 3]


def test_a_stale_version_is_refused(act: Act) -> None:
    rollout = create(act)
    started = do(act, rollout, Command.start)
    assert started.version == 2
    with pytest.raises(ReeloutError) as refused:
        act(service.command, rollout, CommandArgs(Command.pause), ALICE, if_version=1)
    assert (refused.value.code, refused.value.status) == ("STALE_ROLLOUT", 412)
    paused = act(service.command, rollout, CommandArgs(Command.pause), ALICE, if_version=2)
    assert paused.state == "paused" and paused.version == 3


# ---- manual edits ------------------------------------------------------------------------------


def test_a_manual_edit_of_the_flag_pauses_the_rollout(rt: Runtime, act: Act) -> None:
    rollout = create(act)
    assert act(service.check_manual_edit, rollout) is None, "pending: nothing to watch"
    do(act, rollout, Command.start)
    assert act(service.check_manual_edit, rollout) is None
    act(flags.kill, ENV, "other", flags.Edit(BOB, "another flag"))
    assert act(service.check_manual_edit, rollout) is None, "another flag's change is not one"

    act(flags.patch_flag, ENV, FLAG, b'{"defaultVariant": "on"}', flags.Edit(BOB, "on for all"))
    reason = act(service.check_manual_edit, rollout)
    assert reason == (
        f"the flag {FLAG} was edited by bob (patch, revision 4) during the rollout: on for all"
    )
    with rt.db.read() as session:
        assert service.get(session, rollout).state == "paused"
    assert log(rt, rollout)[-1] == ("command", "rollout-controller", "pause", reason)
    assert act(service.check_manual_edit, rollout) is None, "paused already"

    do(act, rollout, Command.resume)
    assert targeting(rt) == split(10, rollout), "resuming takes the flag back"
    assert act(service.check_manual_edit, rollout) is None


def test_a_decision_on_a_manually_edited_flag_pauses_instead(rt: Runtime, act: Act) -> None:
    rollout = create(act)
    do(act, rollout, Command.start)
    act(flags.kill, ENV, FLAG, flags.Edit(BOB, "stop it"))
    recorded = record(act, rollout, "advance", 0)
    assert not recorded.applied and recorded.rollout.state == "paused"
    assert recorded.rollout.stage == 0 and targeting(rt) == split(10, rollout), (
        "no advance was written"
    )
    assert log(rt, rollout)[-1] == (
        "command",
        "rollout-controller",
        "pause",
        f"the flag {FLAG} was edited by bob (kill, revision 3) during the rollout: stop it",
    )


def tick(rt: Runtime, clock: ManualClock, rollout: int, **seen: Any) -> service.Recorded:
    """One controller tick as the controller makes it, on no traffic: a manual edit of the flag
    pauses the rollout first, else `ticks.decide_on`."""
    with rt.db.session() as session:
        if service.check_manual_edit(session, clock, rollout) is not None:
            return service.Recorded(False, service.get(session, rollout))
    return decide_on(rt, clock, rollout, ArmData(0, {}), ArmData(0, {}), **seen)


def test_the_real_decision_function_drives_the_store(
    rt: Runtime, act: Act, clock: ManualClock
) -> None:
    rollout = create(act)
    do(act, rollout, Command.start)
    held = tick(rt, clock, rollout)
    assert held.applied and held.rollout.state == "running"
    assert held.rollout.last_decision is not None
    assert held.rollout.last_decision["decision"] == "hold"
    vetoed = tick(rt, clock, rollout, page_alerts=("error-rate-critical",))
    assert vetoed.applied and vetoed.rollout.state == "paused"
    (decision,) = [e for e in log(rt, rollout) if e[0] == "decision"][-1:]
    assert decision[2] == "pause" and "error-rate-critical" in str(decision[3])


# ---- reading -----------------------------------------------------------------------------------


def test_the_log_pages_oldest_first_and_can_be_followed(rt: Runtime, act: Act) -> None:
    rollout = create(act)
    do(act, rollout, Command.start)
    record(act, rollout, "hold", 0)
    with rt.db.read() as session:
        first = service.log_page(session, rollout, limit=2)
        second = service.log_page(session, rollout, limit=2, cursor=first.next_cursor)
    assert [e.what for e in first.entries] == ["create", "start"] and first.more
    assert [e.what for e in second.entries] == ["hold"] and not second.more
    with rt.db.read() as session:
        waiting = service.log_page(session, rollout, cursor=second.next_cursor)
    assert waiting.entries == [] and waiting.next_cursor == second.next_cursor
    record(act, rollout, "hold", 0)
    with rt.db.read() as session:
        arrived = service.log_page(session, rollout, cursor=waiting.next_cursor)
        assert [e.what for e in arrived.entries] == ["hold"]
        with pytest.raises(ReeloutError) as bad:
            service.log_page(session, rollout, cursor="nonsense")
        assert bad.value.code == "INVALID_CURSOR"
        with pytest.raises(ReeloutError) as missing:
            service.log_page(session, rollout + 1)
        assert (missing.value.code, missing.value.status) == ("ROLLOUT_NOT_FOUND", 404)


def test_rollouts_list_newest_first_with_filters(rt: Runtime, act: Act, clock: ManualClock) -> None:
    ids = []
    for _ in range(3):
        ids.append(create(act))
        do(act, ids[-1], Command.abort)
        clock.advance(60)
    live = create(act)
    with rt.db.read() as session:
        first = service.list_rollouts(session, limit=2)
        rest = service.list_rollouts(session, limit=2, cursor=first.next_cursor)
        pending = service.list_rollouts(session, RolloutFilter(states=("pending",)))
        assert service.running(session) == []
        elsewhere = service.list_rollouts(session, RolloutFilter(environment="preview"))
    assert [r.id for r in first.rollouts + rest.rollouts] == [live, *reversed(ids)]
    assert rest.next_cursor is None
    assert [r.id for r in pending.rollouts] == [live] and elsewhere.rollouts == []
    do(act, live, Command.start)
    with rt.db.read() as session:
        assert [r.id for r in service.running(session)] == [live]


@pytest.mark.postgres
def test_a_rollout_on_postgresql(tmp_path: Path, clock: ManualClock, pg_server_url: str) -> None:
    from tests.conftest import reset_pg

    reset_pg(pg_server_url)
    rt = make_rt(tmp_path, clock, pg_server_url)

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with rt.db.session() as session:
            return fn(session, clock, *args, **kwargs)

    rollout = create(run)
    do(run, rollout, Command.start)
    run(flags.patch_flag, ENV, FLAG, b'{"defaultVariant": "on"}', flags.Edit(BOB))
    assert run(service.check_manual_edit, rollout) is not None
    do(run, rollout, Command.resume)
    assert record(run, rollout, "advance", 0).rollout.percent == 25
    assert do(run, rollout, Command.rollback, reason="pg").state == "rolled_back"
    assert [what for _, _, what, _ in log(rt, rollout)] == [
        "create", "start", "pause", "resume", "advance", "advance", "rollback",
    ]  # fmt: skip
    rt.db.dispose()
