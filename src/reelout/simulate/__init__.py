"""Rollout rehearsals: synthetic users driven through a real server on an accelerated clock.

Why the clock is the server's own, run faster (REELOUT_CLOCK_SPEED), rather than a clock the
simulator moves: a rehearsal has to exercise what production runs, so the stages, warmups, lags
and the "no traffic" and telemetry-lag checks must pass on the same clock that the controller's
periodic tick, the rollups' job, the ingest's `received_at` and OFREP's exposure log read. A
ManualClock stepped from outside (as the tests do) needs the server in the simulator's process
and the jobs run by hand, which is not the served path. A FastClock, set once at process start,
keeps every reader of the clock consistent with no coordination; the simulator only needs the
server's time and speed, which `/healthz` gives, to stamp its events. Its limits: the speed is
for a dedicated server (one process: `serve --workers N` would give each process its own start),
job leases are in fast seconds (the self-started server scales REELOUT_JOB_LEASE_SECONDS), and
the records a rehearsal writes carry times ahead of the real clock."""
